package canon

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting of arrays and objects Parse accepts.
const MaxDepth = 512

// SyntaxError reports malformed JSON and where it was found.
type SyntaxError struct {
	Offset int    // byte offset into the input
	Msg    string // what was wrong
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("canon: invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// ErrTooDeep is wrapped by the SyntaxError returned for over-deep documents.
var ErrTooDeep = errors.New("nesting too deep")

// Parse parses one JSON document with JSON.parse semantics: a repeated key
// keeps its first position and takes its last value, numbers become IEEE
// 754 doubles (out-of-range magnitudes become infinities, which serialise as
// null), and \u escapes may produce lone surrogates. Unlike JSON.parse it
// refuses input that is not valid UTF-8 and nesting deeper than MaxDepth.
func Parse(data []byte) (Value, error) {
	return parse(data, false, goSpawn)
}

// ParseWith is Parse with the goroutines that parse a large document in
// parallel started by spawn instead of by go statements. spawn must start f
// soon on another goroutine, or queue it, and return a function that waits
// for f to return, or makes sure it never starts; Parse calls each such
// function once.
func ParseWith(data []byte, spawn func(f func()) (join func())) (Value, error) {
	return parse(data, false, spawn)
}

func goSpawn(f func()) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return func() { <-done }
}

func parse(data []byte, serial bool, spawn func(func()) func()) (Value, error) {
	// Strings without escapes are views into this private copy of the
	// input, which is never written after this point.
	own := make([]byte, len(data))
	copy(own, data)
	sc := scratchPool.Get().(*scratch)
	p := parser{data: own, members: sc.members[:0], items: sc.items[:0], buf: sc.buf[:0], maxEntry: -1}
	defer sc.put(&p)
	if !serial && len(own) >= parallelMinBytes {
		if n := speculativeRuns(); n > 1 {
			p.spec = speculate(own, n, spawn)
			defer p.spec.finish()
		}
	}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return Value{}, p.errf("unexpected data after the document")
	}
	return v, nil
}

// scratch is a parser's reusable working space: finished objects and arrays
// are copied out of it, so it holds nothing a result refers to.
type scratch struct {
	members []Member
	items   []Value
	buf     []byte
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{members: make([]Member, 0, 16), items: make([]Value, 0, 16)}
}}

// put returns the parser's working space to the pool, cleared so that it
// keeps no document alive; very large spaces are left to the collector.
func (sc *scratch) put(p *parser) {
	if cap(p.members) > 4096 || cap(p.items) > 4096 || cap(p.buf) > 1<<16 {
		return
	}
	clear(p.members[:cap(p.members)])
	clear(p.items[:cap(p.items)])
	sc.members, sc.items, sc.buf = p.members[:0], p.items[:0], p.buf[:0]
	scratchPool.Put(sc)
}

type parser struct {
	data    []byte
	pos     int
	buf     []byte       // scratch for unescaping
	items   []Value      // scratch stack of array items being built
	members []Member     // scratch stack of object members being built
	spec    *speculation // runs of array items parsed ahead by other goroutines
	// maxEntry is the deepest depth at which value met an object or
	// array: a run parsed at relative depth 0 tells by it whether the
	// serial parser, at the run's real depth, would have found it too deep.
	maxEntry int
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.errf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		p.maxEntry = max(p.maxEntry, depth)
		if depth >= MaxDepth {
			return Value{}, &SyntaxError{Offset: p.pos, Msg: ErrTooDeep.Error()}
		}
		return p.object(depth + 1)
	case c == '[':
		p.maxEntry = max(p.maxEntry, depth)
		if depth >= MaxDepth {
			return Value{}, &SyntaxError{Offset: p.pos, Msg: ErrTooDeep.Error()}
		}
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: String, Str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", Value{Kind: Bool, Boolean: true})
	case c == 'f':
		return p.literal("false", Value{Kind: Bool})
	case c == 'n':
		return p.literal("null", Value{Kind: Null})
	default:
		return Value{}, p.errf("unexpected character %q", c)
	}
}

func (p *parser) literal(word string, v Value) (Value, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return Value{}, p.errf("invalid literal")
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) object(depth int) (Value, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{Kind: Object, Members: []Member{}}, nil
	}
	// Members are collected on a shared stack and copied out at the end,
	// so each object costs one exact-size allocation.
	base := len(p.members)
	defer func() { p.members = p.members[:base] }()
	var index map[string]int // built only for large objects
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.errf("expected a string key")
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.errf("expected ':' after key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		// JSON.parse: a repeated key keeps its first slot, last value wins.
		own := p.members[base:]
		dup := -1
		if index != nil {
			if i, ok := index[key]; ok {
				dup = i
			}
		} else {
			for i := range own {
				if own[i].Key == key {
					dup = i
					break
				}
			}
		}
		if dup >= 0 {
			own[dup].Value = val
		} else {
			p.members = append(p.members, Member{Key: key, Value: val})
			n := len(p.members) - base
			if index != nil {
				index[key] = n - 1
			} else if n > 32 {
				index = make(map[string]int, 64)
				for i, m := range p.members[base:] {
					index[m.Key] = i
				}
			}
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return Value{Kind: Object, Members: append([]Member(nil), p.members[base:]...)}, nil
		default:
			return Value{}, p.errf("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{Kind: Array, Items: []Value{}}, nil
	}
	base := len(p.items)
	defer func() { p.items = p.items[:base] }()
	for {
		p.skipSpace()
		if p.spec != nil && p.pos >= p.spec.next() {
			if closed, ok := p.adopt(depth); ok {
				if !closed {
					continue // at the next run's first item
				}
				p.pos++ // ']'
				return Value{Kind: Array, Items: append([]Value(nil), p.items[base:]...)}, nil
			}
		}
		item, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.items = append(p.items, item)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.errf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return Value{Kind: Array, Items: append([]Value(nil), p.items[base:]...)}, nil
		default:
			return Value{}, p.errf("expected ',' or ']' in array")
		}
	}
}

// Large documents are parsed on all cores by speculation, with no pass
// over the input before parsing. The document is cut into equal parts, and
// at each cut the first place that can only be the start of an array item
// outside a string (a comma, blank space, then '{') becomes the start of a
// run: a stretch of items parsed one after another until their array
// closes or the next run's start is reached. Helper goroutines take runs
// from the end of the document backwards while the main parse goes on from
// its start as usual. When the main parse arrives at an array item that
// begins exactly where a run begins, a run a helper has taken becomes its
// own (it waits if the helper is not done yet) and it jumps to where the
// run stopped; a run no helper has taken yet, it parses itself, so a
// helper that starts late costs nothing. A run the main parse never
// arrives at (a cut that fell inside a string, or a wrong guess of any
// kind) is dropped, as is one that failed or nests too deep for where it
// sits: the main parse then parses those bytes itself. So the result, and
// any error with its offset, is always exactly the serial parser's;
// speculation only decides who does the work.

// parallelMinBytes is the smallest document parsed with speculation (a
// variable so that tests and fuzzing can reach the path with small inputs).
var parallelMinBytes = 256 << 10

// parallelRuns, when not 0, is the number of goroutines that parse a
// document instead of one per P (tests use it to make runs meet).
var parallelRuns = 0

// runsPerWorker is how many runs a document is cut into per goroutine: the
// smaller the runs, the less the main parse can wait for one that a helper
// is still parsing.
const runsPerWorker = 8

func speculativeRuns() int {
	if parallelRuns != 0 {
		return parallelRuns
	}
	return runtime.GOMAXPROCS(0)
}

// adopted counts the runs taken over, for tests to see that speculation
// did the work.
var adopted atomic.Int64

// maxGuess is how far past a cut the start of a run is looked for.
const maxGuess = 64 << 10

type speculation struct {
	runs  []*run       // by start
	at    int          // the first run the main parse has not arrived at or passed
	last  atomic.Int64 // helpers take runs below this index, downwards
	stop  atomic.Bool
	joins []func() // one per helper
}

// Who parses a run.
const (
	runFree   = iota
	runHelper // a helper parses it; done closes when it stops
	runMain   // the main parse arrived first, or passed it
)

// run is a stretch of array items parsed ahead. Its fields after state are
// written by its helper before done closes.
type run struct {
	start    int // offset of its first item
	state    atomic.Int32
	dropped  atomic.Bool // the main parse passed start without arriving
	done     chan struct{}
	ok       bool // parsed without error up to end
	closed   bool // end is the ']' closing the array; else a later run's start
	end      int
	items    []Value
	maxEntry int // relative to the items' depth; -1 when none is a container
}

// speculate cuts data for workers goroutines (the caller's included) and
// starts the helpers with spawn.
func speculate(data []byte, workers int, spawn func(func()) func()) *speculation {
	s := &speculation{}
	parts := workers * runsPerWorker
	for k := 1; k < parts; k++ {
		at := runStart(data, k*len(data)/parts)
		if at < 0 || len(s.runs) > 0 && at <= s.runs[len(s.runs)-1].start {
			continue
		}
		s.runs = append(s.runs, &run{start: at, done: make(chan struct{})})
	}
	s.last.Store(int64(len(s.runs)))
	for range min(workers-1, len(s.runs)) {
		s.joins = append(s.joins, spawn(func() { s.help(data) }))
	}
	if helpersFirst {
		for _, join := range s.joins {
			join()
		}
		s.joins = nil
	}
	return s
}

// helpersFirst makes the main parse start only once the helpers are done,
// so that tests know every run was parsed by a helper.
var helpersFirst = false

// runStart returns the offset of a '{' at or after from that follows a
// comma and blank space, or -1 if there is none near. It prefers one where
// the comma follows a '}', as between two objects of an array of objects,
// so that in arrays whose items hold arrays of other values a run starts
// between items rather than inside one.
func runStart(d []byte, from int) int {
	limit := min(len(d), from+maxGuess)
	first := -1
	for i := from; i < limit; {
		j := bytes.IndexByte(d[i:limit], ',')
		if j < 0 {
			break
		}
		c := i + j
		k := c + 1
		for k < len(d) && isSpace(d[k]) {
			k++
		}
		if k < len(d) && d[k] == '{' {
			b := c - 1
			for b >= 0 && isSpace(d[b]) {
				b--
			}
			if b >= 0 && d[b] == '}' {
				return k
			}
			if first < 0 {
				first = k
			}
		}
		i = k
	}
	return first
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// help is a helper goroutine: it takes runs from the last one down until
// it meets one the main parse has reached.
func (s *speculation) help(data []byte) {
	sc := scratchPool.Get().(*scratch)
	sub := parser{data: data, members: sc.members[:0], items: sc.items[:0], buf: sc.buf[:0]}
	defer sc.put(&sub)
	for !s.stop.Load() {
		i := int(s.last.Add(-1))
		if i < 0 || !s.runs[i].state.CompareAndSwap(runFree, runHelper) {
			return
		}
		s.parse(&sub, i)
	}
}

// parse parses run i: items from its start until the array closes or a
// later run's start is reached at an item boundary.
func (s *speculation) parse(sub *parser, i int) {
	r := s.runs[i]
	defer close(r.done)
	data := sub.data
	sub.pos, sub.maxEntry = r.start, -1
	next := i + 1
	var items []Value
	for !s.stop.Load() && !r.dropped.Load() {
		v, err := sub.value(0)
		if err != nil {
			return
		}
		items = append(items, v)
		sub.skipSpace()
		if sub.pos >= len(data) {
			return
		}
		switch data[sub.pos] {
		case ']':
			r.ok, r.closed = true, true
		case ',':
			sub.pos++
			sub.skipSpace()
			for next < len(s.runs) && s.runs[next].start < sub.pos {
				next++
			}
			if next < len(s.runs) && s.runs[next].start == sub.pos {
				r.ok = true
			}
		default:
			return
		}
		if r.ok {
			r.end, r.items, r.maxEntry = sub.pos, items, sub.maxEntry
			return
		}
	}
}

// next returns the start of the first run the main parse has not reached,
// or an offset past any input when none is left.
func (s *speculation) next() int {
	if s.at < len(s.runs) {
		return s.runs[s.at].start
	}
	return int(^uint(0) >> 1)
}

// adopt takes the run that starts at p.pos, if a helper has parsed it and
// it holds where it sits: its items are appended to the array being built
// at depth and p.pos moves to where it stopped. closed tells whether that
// is the array's ']'. Runs the parse has passed are dropped on the way; a
// run no helper has taken is left to the main parse.
func (p *parser) adopt(depth int) (closed, ok bool) {
	s := p.spec
	for s.at < len(s.runs) && s.runs[s.at].start < p.pos {
		r := s.runs[s.at]
		if !r.state.CompareAndSwap(runFree, runMain) {
			r.dropped.Store(true)
		}
		s.at++
	}
	if s.at == len(s.runs) || s.runs[s.at].start != p.pos {
		return false, false
	}
	r := s.runs[s.at]
	s.at++
	if r.state.CompareAndSwap(runFree, runMain) {
		return false, false
	}
	<-r.done
	if !r.ok || depth+r.maxEntry >= MaxDepth {
		return false, false
	}
	p.items = append(p.items, r.items...)
	p.pos = r.end
	adopted.Add(1)
	return r.closed, true
}

// finish stops the helpers and waits for them, so that no work on the
// document outlives the parse.
func (s *speculation) finish() {
	s.stop.Store(true)
	for _, join := range s.joins {
		join()
	}
}

func (p *parser) number() (Value, error) {
	start := p.pos
	d := p.data
	if p.pos < len(d) && d[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(d) {
		return Value{}, p.errf("truncated number")
	}
	switch {
	case d[p.pos] == '0':
		p.pos++
	case d[p.pos] >= '1' && d[p.pos] <= '9':
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
	default:
		return Value{}, p.errf("invalid number")
	}
	simple := true
	if p.pos < len(d) && d[p.pos] == '.' {
		simple = false
		p.pos++
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return Value{}, p.errf("missing digits after decimal point")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		simple = false
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		n := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == n {
			return Value{}, p.errf("missing exponent digits")
		}
	}
	text := d[start:p.pos]
	if simple && len(text) <= 15 {
		// Fits an int64 exactly and converts to float64 without rounding.
		var n int64
		neg := text[0] == '-'
		digits := text
		if neg {
			digits = text[1:]
		}
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			if n == 0 {
				return Value{Kind: Number, Num: negZero}, nil
			}
			n = -n
		}
		return Value{Kind: Number, Num: float64(n)}, nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			return Value{}, p.errf("invalid number")
		}
		// Out of range: ParseFloat returns ±Inf or ±0 like JavaScript.
	}
	return Value{Kind: Number, Num: f}, nil
}

// str parses a JSON string starting at the opening quote and returns it as
// WTF-8.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	d := p.data
	start := p.pos
	// Fast path: no escapes, ASCII only.
	for p.pos < len(d) && plainASCII[d[p.pos]] {
		p.pos++
	}
	if p.pos < len(d) && d[p.pos] == '"' {
		var s string
		if n := p.pos - start; n > 0 {
			s = unsafe.String(&d[start], n)
		}
		p.pos++
		return s, nil
	}
	buf := append(p.buf[:0], d[start:p.pos]...)
	for {
		if p.pos >= len(d) {
			return "", p.errf("unterminated string")
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.buf = buf
			return string(buf), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c == '\\':
			p.pos++
			if p.pos >= len(d) {
				return "", p.errf("unterminated escape")
			}
			e := d[p.pos]
			p.pos++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape")
				}
				if r >= 0xD800 && r <= 0xDBFF && p.pos+6 <= len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					lo, ok := p.hex4()
					if ok && lo >= 0xDC00 && lo <= 0xDFFF {
						buf = utf8.AppendRune(buf, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
						continue
					}
					p.pos = save
				}
				buf = appendWTF8(buf, r)
			default:
				return "", p.errf("invalid escape character %q", e)
			}
		case c < 0x80:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errf("invalid UTF-8 in string")
			}
			buf = append(buf, d[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// plainASCII marks bytes that can appear unescaped in a string and end
// nothing: printable ASCII except '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendWTF8 appends r, which may be a lone surrogate, in generalised UTF-8.
func appendWTF8(b []byte, r rune) []byte {
	if r >= 0xD800 && r <= 0xDFFF {
		return append(b, 0xED, byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
	}
	return utf8.AppendRune(b, r)
}

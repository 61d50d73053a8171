package policy

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// PathStep is one step of a redaction path: a member name, or every item of
// an array (Index -1), or one item.
type PathStep struct {
	Name  string
	Index int // -1: every item ([*]); >= 0: one item; ignored when Name is set
	IsArr bool
}

// ParseRedactionPath parses the v1 redaction path subset: "$" followed by
// ".name", "[*]" or "[n]" steps, for example "$.messages[*].content".
func ParseRedactionPath(p string) ([]PathStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, errors.New("redaction path must start with $")
	}
	rest := p[1:]
	var steps []PathStep
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if name == "" {
				return nil, errors.New("empty member name in redaction path")
			}
			steps = append(steps, PathStep{Name: name})
			rest = rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("unclosed [ in redaction path")
			}
			in := rest[1:end]
			if in == "*" {
				steps = append(steps, PathStep{Index: -1, IsArr: true})
			} else {
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return nil, errors.New("array step must be [*] or [n]")
				}
				steps = append(steps, PathStep{Index: n, IsArr: true})
			}
			rest = rest[end+1:]
		default:
			return nil, errors.New("redaction path steps are .name, [*] or [n]")
		}
	}
	if len(steps) == 0 {
		return nil, errors.New("redaction path must name a field")
	}
	return steps, nil
}

func parseRFC3339(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

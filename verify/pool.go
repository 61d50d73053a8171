package verify

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/clawea/clawea/canon"
)

// The parallel work of a large check (parse, schema, encoding, event
// chain, receipts) runs on helper goroutines that stay up while any large
// check runs in the process, and that wait for their next task by spinning
// instead of sleeping. A check hands work to the other cores many times,
// and on a virtual machine a core that went to sleep between two phases
// can take from a few hundred microseconds to milliseconds to wake up: its
// vCPU must be scheduled again by the hypervisor. Execution traces of
// two-core checks with a goroutine started per phase showed about 3 ms per
// check of core time lost that way, with work ready and a core idle.
//
// Whoever waits for a task that no helper has taken yet runs it itself, so
// no wait depends on a helper being free: tasks are an offer of help, not
// a hand-off.

// largeInput is the smallest input whose check uses the helpers.
const largeInput = 256 << 10

type pool struct {
	mu      sync.Mutex
	queue   []*task
	queued  atomic.Int32
	users   atomic.Int32 // large checks running
	helpers int          // helper goroutines running (under mu)
	spawned atomic.Int64 // tasks ever queued (tests read it)
}

// helpers is the process's pool.
var helpers pool

// Task states.
const (
	taskQueued = iota
	taskTaken
	taskDone
)

type task struct {
	state atomic.Int32
	f     func()
}

// enter marks a large check as running on workers goroutines (its own
// included), starting helpers as needed; leave marks its end. Helpers
// leave once no large check runs.
func (p *pool) enter(workers int) {
	p.users.Add(1)
	p.mu.Lock()
	for ; p.helpers < workers-1; p.helpers++ {
		go p.help()
	}
	p.mu.Unlock()
}

func (p *pool) leave() { p.users.Add(-1) }

// useHelpers enters the pool for the check of an input of size bytes on
// workers goroutines if it is large, and returns what ends it.
func useHelpers(size, workers int) (done func()) {
	workers = min(workers, runtime.GOMAXPROCS(0)) // a helper per spare P at most
	if size < largeInput || workers < 2 {
		return func() {}
	}
	helpers.enter(workers)
	return helpers.leave
}

// active reports whether a large check is running, so that parallel work
// goes to the helpers.
func (p *pool) active() bool { return p.users.Load() > 0 }

// spawn queues f for a helper.
func (p *pool) spawn(f func()) *task {
	t := &task{f: f}
	p.mu.Lock()
	p.queue = append(p.queue, t)
	p.mu.Unlock()
	p.queued.Add(1)
	p.spawned.Add(1)
	return t
}

func (p *pool) take() *task {
	if p.queued.Load() <= 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return nil
	}
	t := p.queue[0]
	p.queue[0] = nil
	if p.queue = p.queue[1:]; len(p.queue) == 0 {
		p.queue = nil
	}
	p.queued.Add(-1)
	return t
}

// spinYield is how many empty polls a spinning goroutine makes between
// two yields to the Go scheduler (which lets the collector and any other
// goroutine have the core).
const spinYield = 1024

// help is a helper goroutine.
func (p *pool) help() {
	for idle := 1; ; idle++ {
		if t := p.take(); t != nil {
			t.run()
			idle = 0
			continue
		}
		if idle%spinYield == 0 {
			if !p.active() {
				p.mu.Lock()
				if !p.active() {
					p.helpers--
					p.mu.Unlock()
					return
				}
				p.mu.Unlock()
			}
			runtime.Gosched()
		}
	}
}

// run runs t unless someone else has taken it.
func (t *task) run() {
	if t.state.CompareAndSwap(taskQueued, taskTaken) {
		t.f()
		t.state.Store(taskDone)
	}
}

// join runs t here if no helper has taken it, or waits, spinning, until
// the helper is done.
func (t *task) join() {
	t.run()
	for i := 1; t.state.Load() != taskDone; i++ {
		if i%spinYield == 0 {
			runtime.Gosched()
		}
	}
}

// cancel makes sure t never starts, or waits until it is done.
func (t *task) cancel() {
	if !t.state.CompareAndSwap(taskQueued, taskDone) {
		t.join()
	}
}

// start runs f beside the caller, on a helper while a large check runs
// and on its own goroutine otherwise. wait returns once f has returned;
// drop, for a caller that no longer needs f, keeps a queued f from running.
func start(f func()) (wait, drop func()) {
	if helpers.active() {
		t := helpers.spawn(f)
		return t.join, t.cancel
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	return func() { <-done }, func() {}
}

// parse parses a check's input, with the helpers for a large one.
func parse(data []byte) (canon.Value, error) {
	if helpers.active() && len(data) >= largeInput {
		return canon.ParseWith(data, func(f func()) func() { return helpers.spawn(f).cancel })
	}
	return canon.Parse(data)
}

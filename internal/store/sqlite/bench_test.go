package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
)

// BenchmarkAppendEvent appends an event with one receipt-sized item, as a
// model call does: alone (Serial) and from 32 goroutines on 32 jobs
// (Parallel, where batches form); Prepared is a lone append built on the
// known head, which is one conditional INSERT.
func BenchmarkAppendEvent(b *testing.B) {
	event, payload, receipt := bytes.Repeat([]byte("e"), 300), bytes.Repeat([]byte("p"), 350), []byte(`"`+strings.Repeat("r", 1300)+`"`)
	open := func(b *testing.B, jobs int, opt ...Options) *DB {
		db, err := OpenWith(context.Background(), filepath.Join(b.TempDir(), "bench.db"), append(opt, Options{})[0])
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		for i := 0; i < jobs; i++ {
			j := store.Job{ID: fmt.Sprint("job_", i), AgentDID: "did:key:a", PolicyHash: "p", ScopeHash: "s", TokenHash: fmt.Sprint("t", i), Status: store.JobOpen, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			if err := db.CreateJob(context.Background(), j); err != nil {
				b.Fatal(err)
			}
		}
		return db
	}
	appendOne := func(db *DB, job string, n int) error {
		_, err := db.AppendEvent(context.Background(), job, func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
			seq := int64(1)
			if last != nil {
				seq = last.Seq + 1
			}
			return store.JobEvent{Seq: seq, EventID: fmt.Sprintf("evt_%06d", seq), EventType: "llm_call", EventHash: "h", Event: event, Payload: payload, CreatedAt: time.Now()},
				[]store.JobItem{{Kind: "gateway_receipt", ItemID: fmt.Sprint("rcpt_", job, n), EventHash: "h", JSON: receipt, CreatedAt: time.Now()}}, nil
		})
		return err
	}
	b.Run("Serial", func(b *testing.B) {
		db := open(b, 1)
		for i := 0; b.Loop(); i++ {
			if err := appendOne(db, "job_0", i); err != nil {
				b.Fatal(err)
			}
		}
	})
	prepared := func(b *testing.B, opt Options) *DB {
		db := open(b, 1, opt)
		var head *store.JobEvent
		var inCall time.Duration
		add := func(i int) {
			seq := int64(1)
			if head != nil {
				seq = head.Seq + 1
			}
			ev := store.JobEvent{Seq: seq, EventID: fmt.Sprintf("evt_%06d", seq), EventType: "llm_call", EventHash: fmt.Sprint("h", seq), Event: event, Payload: payload, CreatedAt: time.Now()}
			items := []store.JobItem{{Kind: "gateway_receipt", ItemID: fmt.Sprint("rcpt_", i), EventHash: ev.EventHash, JSON: receipt, CreatedAt: time.Now()}}
			t := time.Now()
			got, err := db.AppendPrepared(context.Background(), "job_0", head, ev, items, func(*store.JobEvent) (store.JobEvent, []store.JobItem, error) {
				return store.JobEvent{}, nil, fmt.Errorf("head moved")
			})
			inCall += time.Since(t)
			if err != nil {
				b.Fatal(err)
			}
			head = &got
		}
		add(-1) // the first append learns the head (with the journal, in a transaction)
		inCall = 0
		for i := 0; b.Loop(); i++ {
			add(i)
			if db.jn != nil {
				db.jn.settle() // light load: each call's insert ends before the next call
			}
		}
		// What the caller waits for, apart from the loop's own work.
		b.ReportMetric(float64(inCall.Nanoseconds())/float64(b.N), "call-ns/op")
		return db
	}
	b.Run("Prepared", func(b *testing.B) {
		// A lone append built on the head the caller knows, without the
		// journal: one conditional INSERT on the call's path.
		db := prepared(b, Options{NoJournal: true})
		if n := db.preparedAppends.Load(); n == 0 {
			b.Fatal("the one-statement path was not taken")
		}
	})
	b.Run("Journaled", func(b *testing.B) {
		// The same with the journal, as the gateways do at light load:
		// the caller waits for one write(2) (call-ns/op); the insert runs
		// behind it, and the loop waits for it before the next append.
		db := prepared(b, Options{})
		if err := db.jn.settle(); err != nil || db.jn.count() == 0 {
			b.Fatalf("the journal was not used (%v)", err)
		}
	})
	b.Run("Parallel32", func(b *testing.B) {
		db := open(b, 32)
		var wg sync.WaitGroup
		per := b.N/32 + 1
		b.ResetTimer()
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if err := appendOne(db, fmt.Sprint("job_", w), i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

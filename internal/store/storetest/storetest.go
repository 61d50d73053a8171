// Package storetest is the conformance suite every store back end must
// pass, plus helpers that provide a fresh PostgreSQL database per test.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clawea/clawea/internal/store"
)

// Opener returns a new, empty store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite against stores from open.
func Run(t *testing.T, open Opener) {
	t.Run("WPCs", func(t *testing.T) { testWPCs(t, open(t)) })
	t.Run("WPCConcurrentPublish", func(t *testing.T) { testWPCConcurrent(t, open(t)) })
}

func testWPCs(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetWPC(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	created := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	w := store.WPC{Hash: "hash-b", PolicyID: "p1", PolicyVersion: "2", IssuerDID: "did:key:z1",
		Payload: []byte(`{"a":1}`), Envelope: []byte(`{"e":1}`), CreatedAt: created}
	got, existed, err := s.PutWPC(ctx, w)
	if err != nil || existed {
		t.Fatalf("first put: existed=%v err=%v", existed, err)
	}
	if !got.CreatedAt.Equal(created) || string(got.Payload) != `{"a":1}` || got.PolicyID != "p1" {
		t.Fatalf("stored %+v", got)
	}
	again := w
	again.Envelope = []byte(`{"e":2}`)
	again.CreatedAt = created.Add(time.Hour)
	got, existed, err = s.PutWPC(ctx, again)
	if err != nil || !existed || string(got.Envelope) != `{"e":1}` || !got.CreatedAt.Equal(created) {
		t.Fatalf("second put must keep the first record: existed=%v %+v %v", existed, got, err)
	}
	for _, h := range []string{"hash-a", "hash-c", "hash-B"} {
		w2 := w
		w2.Hash = h
		if _, _, err := s.PutWPC(ctx, w2); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListWPCs(ctx, "", 3)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	var hashes []string
	for _, x := range list {
		hashes = append(hashes, x.Hash)
	}
	if strings.Join(hashes, ",") != "hash-B,hash-a,hash-b" {
		t.Errorf("byte order: %v", hashes)
	}
	rest, err := s.ListWPCs(ctx, list[2].Hash, 10)
	if err != nil || len(rest) != 1 || rest[0].Hash != "hash-c" {
		t.Errorf("second page: %+v %v", rest, err)
	}
}

func testWPCConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, existed, err := s.PutWPC(ctx, store.WPC{Hash: "same", PolicyID: "p", PolicyVersion: "1", IssuerDID: "did:key:z",
				Payload: []byte(fmt.Sprint(i)), Envelope: []byte("{}")})
			if err != nil {
				t.Error(err)
				return
			}
			if !existed {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if fresh != 1 {
		t.Errorf("%d publishers saw a new record, want exactly 1", fresh)
	}
}

// PostgresDSN returns the DSN of a new, empty database on the test server
// (CLAWEA_TEST_POSTGRES_DSN), dropped when the test ends. Without a server
// the test is skipped, or fails when CLAWEA_REQUIRE_POSTGRES=1 (CI).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("CLAWEA_TEST_POSTGRES_DSN")
	if admin == "" {
		msg := "no PostgreSQL for tests: set CLAWEA_TEST_POSTGRES_DSN (scripts/test starts one)"
		if os.Getenv("CLAWEA_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("test PostgreSQL at %s: %v", store.Redact(admin), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "clawea_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(admin, "/"+cfg.Database, "/"+name, 1)
}

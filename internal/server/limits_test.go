package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
)

// TestSlowConnectionsAreClosedAndCapped: connections that never finish
// their headers are closed after the read-header timeout, at most
// MaxConns are open at once (a request waits for a slot), and the server
// keeps answering.
func TestSlowConnectionsAreClosedAndCapped(t *testing.T) {
	node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(t.TempDir()), Listen: "127.0.0.1:0",
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		HTTP: server.HTTPLimits{ReadHeaderTimeout: 1500 * time.Millisecond, ReadTimeout: 2 * time.Second, MaxConns: 4}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	addr := strings.TrimPrefix(url, "http://")

	slow := func(n int) []net.Conn {
		var cs []net.Conn
		for range n {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // never finished
			cs = append(cs, c)
		}
		return cs
	}
	// closedWithin waits until the server closes every connection.
	closedWithin := func(cs []net.Conn, d time.Duration) {
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(d))
				_, err := io.ReadAll(c)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("slow connection %d still open after %s", i, d)
				}
			}()
		}
		wg.Wait()
	}

	// The cap: four slow connections hold every slot; a request waits.
	held := slow(4)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		c := &http.Client{Timeout: 20 * time.Second}
		resp, err := c.Get(url + "/healthz")
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{status: resp.StatusCode}
	}()
	select {
	case r := <-got:
		t.Fatalf("a request was served past the connection cap after %s: %+v", time.Since(start), r)
	case <-time.After(700 * time.Millisecond):
	}
	closedWithin(held, 15*time.Second)
	r := <-got
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("request after the slow connections closed: %+v", r)
	}

	// Many slow connections: every one is closed, none lingers.
	closedWithin(slow(20), 30*time.Second)
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}

	// A body that stalls is given up after the read timeout.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("POST /v1/wpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: 1000\r\n\r\n{\"wpc\":"))
	closedWithin([]net.Conn{c}, 15*time.Second)
}

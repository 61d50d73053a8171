package toolgw_test

import (
	"context"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store/storetest"
	"github.com/clawea/clawea/internal/toolgw"
)

// TestConnectorDenyAcrossInstances: a connector denied on one node is
// refused by a second node sharing the same PostgreSQL within the switch
// cache's quarter of a second (plus a poll), and allowed again likewise.
func TestConnectorDenyAcrossInstances(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	data := keystore.Dir(t.TempDir())
	open := func() *env {
		node, err := server.Open(context.Background(), server.Config{DataDir: data, DB: dsn, Listen: "127.0.0.1:0", LocalBuses: []string{"sb-orders"}})
		if err != nil {
			t.Fatal(err)
		}
		url, err := node.Listen()
		if err != nil {
			node.Close()
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- node.Serve(ctx) }()
		t.Cleanup(func() { cancel(); <-done; node.Close() })
		tok, _, _ := data.AdminToken()
		return &env{t: t, node: node, url: url, admin: client.New(url, tok)}
	}
	a, b := open(), open()
	_, tok := a.job(a.publish([]byte(switchPolicy)))
	send := map[string]any{"namespace": "sb-orders", "entity": "q", "body": "m"}
	// The second node knows the job once its token state caught up.
	wait := func(want string, what string) time.Duration {
		start := time.Now()
		for {
			code, _ := b.jsonCall(t, tok, "servicebus_send", send)
			if code == want {
				return time.Since(start)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: the second node answers %q after %s", what, code, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("", "before")
	if _, _, err := a.admin.Do(context.Background(), "POST", "/v1/connectors/servicebus/deny", map[string]any{"reason": "incident"}, nil); err != nil {
		t.Fatal(err)
	}
	d := wait(toolgw.CodeConnectorDenied, "deny")
	t.Logf("deny seen by the second node after %s", d.Round(time.Millisecond))
	if d > time.Second {
		t.Errorf("deny took %s to reach the second node", d)
	}
	if _, _, err := a.admin.Do(context.Background(), "POST", "/v1/connectors/servicebus/allow", map[string]any{"reason": "resolved"}, nil); err != nil {
		t.Fatal(err)
	}
	wait("", "allow")
}

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/devvault"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDevVaultSeedOnFreshDataDir runs the README's command on a machine
// with no ~/.clawea, then reads the seeded secret back through the
// official azsecrets client.
func TestDevVaultSeedOnFreshDataDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLAWEA_DATA_DIR", "")
	os.Unsetenv("CLAWEA_DATA_DIR")
	var out, errb lockedBuffer
	cmd := newDevVaultCmd(&env{in: bytes.NewReader(nil), out: &out, err: &errb})
	cmd.SetArgs([]string{"--vault", "kv-dev", "--seed", "agent/app/db-password=s3cret"}) // README: clawea devvault --vault kv-dev --seed ...
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	connPath := filepath.Join(home, ".clawea", "devvault", "kv-dev.conn.json")
	deadline := time.Now().Add(30 * time.Second)
	var conn devvault.Conn
	for {
		select {
		case err := <-done:
			t.Fatalf("devvault exited: %v\n%s%s", err, out.String(), errb.String())
		default:
		}
		c, err := devvault.ReadConn(connPath)
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection file after 30s: %v\n%s%s", err, out.String(), errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	kv, err := conn.Client()
	if err != nil {
		t.Fatal(err)
	}
	s, err := kv.Get(context.Background(), "agent/app/db-password", "")
	if err != nil || s.Value != "s3cret" {
		t.Fatalf("seeded secret: %+v %v", s, err)
	}
	if _, err := os.Stat(filepath.Join(home, ".clawea", "devvault", "kv-dev.json")); err != nil {
		t.Fatalf("the vault was not persisted: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devvault: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devvault did not stop")
	}
}

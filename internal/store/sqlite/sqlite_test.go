package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "clawea.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// Package server assembles clawea's roles (the policy registry now; the
// issuer, jobs, gateways and Trust Pulse as they land) into one HTTP
// server over one store, with health endpoints and graceful shutdown.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/store"
	_ "github.com/clawea/clawea/internal/store/postgres" // postgres:// DSNs
	_ "github.com/clawea/clawea/internal/store/sqlite"   // the embedded default
)

// Roles a server can run.
const (
	RoleRegistry = "registry"
)

// AllRoles lists every role, the default of clawea serve.
var AllRoles = []string{RoleRegistry}

// Config is a node's configuration.
type Config struct {
	DataDir keystore.Dir
	Listen  string   // host:port; default 127.0.0.1:8420
	DB      string   // DSN; default sqlite:<data-dir>/clawea.db
	Roles   []string // default AllRoles
	Log     *slog.Logger
}

// Node is a running server.
type Node struct {
	cfg      Config
	Store    store.Store
	Handler  http.Handler
	DIDs     map[string]string // role -> signer did:key
	Created  []string          // key and token files created at start
	listener net.Listener
	srv      *http.Server
}

// Open prepares a node: it opens the store, loads or creates each role's
// key and the admin token, and builds the routes. Nothing listens yet.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = keystore.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8420"
	}
	if cfg.DB == "" {
		cfg.DB = "sqlite:" + string(cfg.DataDir) + "/clawea.db"
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = AllRoles
	}
	for _, r := range cfg.Roles {
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("server: unknown role %q (known: %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, Store: st, DIDs: map[string]string{}}
	mux := http.NewServeMux()
	if slices.Contains(cfg.Roles, RoleRegistry) {
		key, created, err := cfg.DataDir.Key(RoleRegistry)
		if err != nil {
			st.Close()
			return nil, err
		}
		if created {
			n.Created = append(n.Created, cfg.DataDir.KeyPath(RoleRegistry))
		}
		tok, created, err := cfg.DataDir.AdminToken()
		if err != nil {
			st.Close()
			return nil, err
		}
		if created {
			n.Created = append(n.Created, cfg.DataDir.TokenPath())
		}
		n.DIDs[RoleRegistry] = key.DID()
		(&registry.Server{Store: st, Signer: key, Authorize: registry.AdminToken(tok), Log: cfg.Log}).Register(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "roles": cfg.Roles})
	})
	mux.HandleFunc("GET /readyz", n.ready)
	mux.HandleFunc("GET /v1/did", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"roles": n.DIDs})
	})
	n.Handler = withRequestLimits(mux)
	return n, nil
}

func (n *Node) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := n.Store.ListWPCs(ctx, "", 1); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": n.Store.Backend()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "store": n.Store.Backend()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// withRequestLimits sets security headers every response carries.
func withRequestLimits(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// Listen binds the configured address and returns the base URL.
func (n *Node) Listen() (string, error) {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("server: listen %s: %w", n.cfg.Listen, err)
	}
	n.listener = ln
	return "http://" + ln.Addr().String(), nil
}

// Serve serves until ctx ends, then shuts down gracefully (10 s).
func (n *Node) Serve(ctx context.Context) error {
	if n.listener == nil {
		if _, err := n.Listen(); err != nil {
			return err
		}
	}
	n.srv = &http.Server{Handler: n.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(n.listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.srv.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// Close releases the store.
func (n *Node) Close() error { return n.Store.Close() }

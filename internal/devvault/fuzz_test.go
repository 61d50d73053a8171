package devvault_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/devvault"
)

// FuzzHandler feeds arbitrary methods, request targets and bodies to the
// handler with a valid token (and sometimes without). It must never panic,
// never answer 5xx, and always answer JSON (or nothing, for 204).
func FuzzHandler(f *testing.F) {
	srv, err := devvault.New(devvault.Options{PageSize: 2, MaxSecrets: 500})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	for _, n := range []string{"a", "b", "c"} {
		if _, err := srv.Put(n, "v", ""); err != nil {
			f.Fatal(err)
		}
	}

	const av = "?api-version=2026-04-01"
	seeds := []struct {
		method, target, body string
	}{
		{"PUT", "/secrets/x" + av, `{"value":"v","contentType":"text/plain","attributes":{"enabled":true,"nbf":1,"exp":2},"tags":{"k":"v","n":null}}`},
		{"PUT", "/secrets/x" + av, `{"value":null}`},
		{"PUT", "/secrets/x" + av, `[1,2]`},
		{"PUT", "/secrets/x" + av, `{"value":"v"} trailing`},
		{"PUT", "/secrets/x" + av, ``},
		{"GET", "/secrets/a" + av, ``},
		{"GET", "/secrets/a/" + av, ``},
		{"GET", "/secrets/a/0123456789abcdef0123456789abcdef" + av, ``},
		{"GET", "/secrets/a/versions" + av + "&maxresults=1", ``},
		{"GET", "/secrets/a/versions" + av + "&$skiptoken=1&maxresults=1", ``},
		{"GET", "/secrets" + av + "&$skiptoken=a&maxresults=1", ``},
		{"GET", "/secrets" + av + "&$skiptoken=%ZZ", ``},
		{"DELETE", "/secrets/b" + av, ``},
		{"GET", "/deletedsecrets" + av, ``},
		{"GET", "/deletedsecrets/b" + av, ``},
		{"POST", "/deletedsecrets/b/recover" + av, ``},
		{"DELETE", "/deletedsecrets/b" + av, ``},
		{"GET", "/secrets/%2F..%2F" + av, ``},
		{"GET", "//secrets//a" + av, ``},
		{"PATCH", "/secrets/a/x" + av, `{}`},
		{"GET", "/", ``},
		{"GET", "/secrets/a;b" + av + ";x=y", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, []byte(s.body), true)
	}
	f.Add("GET", "/secrets", []byte(nil), false)

	f.Fuzz(func(t *testing.T, method, target string, body []byte, auth bool) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "https://127.0.0.1:8443"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request net/http would deliver
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+srv.Token())
		}
		req.Host = "127.0.0.1:8443"
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", method, target, rec.Code, rec.Body.String())
		}
		if auth && rec.Code == http.StatusUnauthorized {
			t.Fatalf("%s %q: valid token refused", method, target)
		}
		if rec.Code == http.StatusNoContent {
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body")
			}
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: %d with non-JSON body %q", method, target, rec.Code, rec.Body.String())
		}
	})
}

package devvault

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	for spec, want := range map[string]Fault{
		"403":   {Status: 403},
		"429:5": {Status: 429, RetryAfter: 5 * time.Second},
		"503:0": {Status: 503},
		"hang":  {Hang: true},
	} {
		got, err := ParseFault(spec)
		if err != nil || got != want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"", "200", "399", "600", "+403", "-403", "0403", "403:", "429:-1", "429:+1", "429:86401", "429:x", "hang:1", "HANG", "403 "} {
		if f, err := ParseFault(spec); err == nil {
			t.Errorf("ParseFault(%q) = %+v, want an error", spec, f)
		}
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"403", "429:5", "hang", "", "999", "429:86400", "4a3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		fl, err := ParseFault(spec)
		if err != nil {
			return
		}
		if !fl.Hang && (fl.Status < 400 || fl.Status > 599) || fl.RetryAfter < 0 || fl.RetryAfter > 86400*time.Second {
			t.Fatalf("ParseFault(%q) = %+v", spec, fl)
		}
	})
}

func TestSetFaultValidates(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    Fault
	}{
		{"a/b", Fault{Status: 403}},
		{"", Fault{Status: 403}},
		{"x", Fault{Status: 200}},
		{"x", Fault{Status: 429, RetryAfter: -time.Second}},
	} {
		if err := s.SetFault(tc.name, tc.f); err == nil {
			t.Errorf("SetFault(%q, %+v) accepted", tc.name, tc.f)
		}
	}
	if _, err := New(Options{Faults: map[string]Fault{"x": {Status: 302}}}); err == nil {
		t.Error("New accepted a fault with status 302")
	}
}

// TestFaultAnswers checks the wire: status, Retry-After and the Azure
// error body, after the token check; and that Close releases a hung
// request.
func TestFaultAnswers(t *testing.T) {
	s, err := New(Options{Faults: map[string]Fault{"Busy": {Status: 429, RetryAfter: 1500 * time.Millisecond}, "stuck": {Hang: true}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	do := func(path string, auth bool) *http.Response {
		req, _ := http.NewRequest("GET", url+path+"?api-version=7.5", nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+s.Token())
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := do("/secrets/busy", false); r.StatusCode != 401 {
		t.Errorf("without a token: %d, want 401 first", r.StatusCode)
	}
	r := do("/secrets/BUSY/", true)
	var body strings.Builder
	buf := make([]byte, 512)
	n, _ := r.Body.Read(buf)
	body.Write(buf[:n])
	r.Body.Close()
	if r.StatusCode != 429 || r.Header.Get("Retry-After") != "2" || !strings.Contains(body.String(), `"code":"Throttled"`) {
		t.Errorf("fault answer: %d Retry-After %q body %s", r.StatusCode, r.Header.Get("Retry-After"), body.String())
	}
	if s.FaultHits("busy") != 1 {
		t.Errorf("hits: %d", s.FaultHits("busy"))
	}
	if r := do("/secrets/other", true); r.StatusCode != 404 {
		t.Errorf("a name without a fault: %d, want the vault's own 404", r.StatusCode)
	}

	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"/secrets/stuck?api-version=7.5", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-done:
		t.Fatal("a hung request was answered")
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	s.Close()
	<-done
	if time.Since(start) > 3*time.Second {
		t.Errorf("Close took %s with a hung request", time.Since(start))
	}
}

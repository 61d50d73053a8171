package verify

import (
	"encoding/json"
	"testing"

	"github.com/clawea/clawea/bundle"
)

func unanchoredBundle(t testing.TB, records [][]byte) []byte {
	t.Helper()
	md := map[string]any{"clawea_job_id": "job_1"}
	if u, err := bundle.NewUnanchored(records); err != nil {
		t.Fatal(err)
	} else if u != nil {
		md["clawea_unanchored"] = u
	}
	raw, _ := json.Marshal(map[string]any{"payload": map[string]any{"bundle_version": "1", "agent_did": "did:key:z",
		"event_chain": []map[string]any{{"run_id": "job_1", "event_hash_b64u": "E1"}, {"run_id": "job_1", "event_hash_b64u": "E2"}},
		"metadata":    md}})
	return raw
}

func TestCheckUnanchored(t *testing.T) {
	a := []byte(`{"receipt_id":"se_1","binding":{"run_id":"job_1","event_hash_b64u":"E1"}}`)
	b := []byte(`{"receipt_id":"ha_1","binding":{"run_id":"job_1","event_hash_b64u":"E2","parent_span_id":""}}`)
	data := unanchoredBundle(t, [][]byte{a, b})

	u, r := CheckUnanchored(data, [][]byte{b, a})
	if r != nil || !u.Checked || u.Declared != 2 {
		t.Fatalf("matching records: %+v %+v", u, r)
	}
	u, r = CheckUnanchored(data, nil)
	if r != nil || u.Checked || u.Declared != 2 || u.Note == "" {
		t.Fatalf("records not supplied: %+v %+v", u, r)
	}
	if _, r := CheckUnanchored(data, [][]byte{a}); r == nil || r.Code != UnanchoredMismatch {
		t.Errorf("a record missing: %+v", r)
	}
	if _, r := CheckUnanchored(data, [][]byte{}); r == nil || r.Code != UnanchoredMismatch {
		t.Errorf("no records for a declared entry: %+v", r)
	}
	// Records that hash right but belong to another run or event.
	for name, rec := range map[string][]byte{
		"other run":   []byte(`{"receipt_id":"se_1","binding":{"run_id":"job_2","event_hash_b64u":"E1"}}`),
		"other event": []byte(`{"receipt_id":"se_1","binding":{"run_id":"job_1","event_hash_b64u":"E9"}}`),
	} {
		d := unanchoredBundle(t, [][]byte{rec})
		if _, r := CheckUnanchored(d, [][]byte{rec}); r == nil || r.Code != UnanchoredMismatch {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// A bundle without an entry: no records may be supplied.
	plain := unanchoredBundle(t, nil)
	if u, r := CheckUnanchored(plain, nil); r != nil || u.Declared != 0 || u.Note != "" {
		t.Errorf("no entry: %+v %+v", u, r)
	}
	if _, r := CheckUnanchored(plain, [][]byte{a}); r == nil || r.Code != UnanchoredMismatch {
		t.Errorf("records beside a bundle that declares none: %+v", r)
	}
	for _, bad := range []string{`[]`, `{"payload":{"metadata":{"clawea_unanchored":{"count":0,"root_b64u":"x","version":"1"}}}}`,
		`{"payload":{"metadata":{"clawea_unanchored":"x"}}}`} {
		if _, r := CheckUnanchored([]byte(bad), nil); r == nil || r.Code != MalformedEnvelope {
			t.Errorf("%s: %+v", bad, r)
		}
	}
}

// FuzzCheckUnanchored feeds arbitrary bundles and records: no panic, and a
// pass always means the records were checked.
func FuzzCheckUnanchored(f *testing.F) {
	rec := `{"receipt_id":"se_1","binding":{"run_id":"job_1","event_hash_b64u":"E1"}}`
	f.Add(string(unanchoredBundle(f, [][]byte{[]byte(rec)})), rec, true)
	f.Add(`{"payload":{"metadata":{"clawea_unanchored":{"version":"1","count":1,"root_b64u":"A"}}}}`, `{}`, false)
	f.Add(`[`, `{"receipt_id":1}`, true)
	f.Fuzz(func(t *testing.T, data, record string, supply bool) {
		var recs [][]byte
		if supply {
			recs = [][]byte{[]byte(record)}
		}
		u, r := CheckUnanchored([]byte(data), recs)
		if r == nil && supply && !u.Checked {
			t.Fatalf("passed without checking: %+v", u)
		}
		if r == nil && supply && u.Declared != 1 {
			t.Fatalf("one record passed against a declared count of %d", u.Declared)
		}
	})
}

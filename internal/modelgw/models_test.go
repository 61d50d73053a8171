package modelgw_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/clawea/clawea/internal/modelgw"
)

// listModels asks GET /v1/models through the official OpenAI client.
func listModels(t *testing.T, e *env, tok string) ([]string, error) {
	t.Helper()
	cl := openai.NewClient(ooption.WithBaseURL(e.url+"/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	page, err := cl.Models.List(context.Background())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range page.Data {
		if m.Object != "model" {
			t.Fatalf("object %q", m.Object)
		}
		ids = append(ids, m.OwnedBy+"/"+m.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

func TestModelsListV2(t *testing.T) {
	e := start(t, func(o *modelgw.Options) {
		o.Providers[0].Models = []string{"clawea-local-test-model", "other-local"}
		o.Providers[1].Models = []string{"gpt-4o-mini", "gpt-4o", "o3"}
		o.Providers[2].Models = []string{"claude-sonnet-4-5"}
	})
	// testPolicy: model://local/*, model://openai/gpt-4o-mini, model://anthropic/claude-*
	_, tok := e.job(e.publish(testPolicy), nil)
	ids, err := listModels(t, e, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"anthropic/claude-sonnet-4-5", "local/clawea-local-test-model", "local/other-local", "openai/gpt-4o-mini"}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}

	// A policy's concrete names are listed without a provider list; a
	// Deny wins; a glob alone lists nothing.
	pol := `{"policy_version":"2","policy_id":"models-v2","issuer_did":"did:web:test.example",
	 "statements":[{"sid":"A","effect":"Allow","actions":["model:invoke"],"resources":["model://openai/gpt-5-named","model://openai/o3","model://*/shared-name","model://anthropic/*"]},
	  {"sid":"D","effect":"Deny","actions":["model:invoke"],"resources":["model://openai/o3"]}]}`
	e2 := start(t, nil)
	_, tok2 := e2.job(e2.publish(pol), nil)
	ids, err = listModels(t, e2, tok2)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"anthropic/shared-name", "local/shared-name", "openai/gpt-5-named", "openai/shared-name"}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}

func TestModelsListV1(t *testing.T) {
	e := start(t, func(o *modelgw.Options) {
		o.Providers[1].Models = []string{"gpt-4o-mini", "gpt-4o", "o3"}
		o.Providers[2].Models = []string{"claude-sonnet-4-5"}
	})
	pol := `{"policy_version":"1","policy_id":"models-v1","issuer_did":"did:web:test.example",
	 "allowed_providers":["openai"],"allowed_models":["gpt-4o*","named-one"]}`
	_, tok := e.job(e.publish(pol), nil)
	ids, err := listModels(t, e, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"openai/gpt-4o", "openai/gpt-4o-mini", "openai/named-one"}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}

func TestModelsListRefusals(t *testing.T) {
	e := start(t, nil)
	// No token, a provider key, a garbage token: the SDK sees API errors.
	for _, tok := range []string{"", "sk-not-a-token", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"} {
		_, err := listModels(t, e, tok)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode < 400 || ae.StatusCode >= 500 {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	// A finished job's token lists nothing.
	id, tok := e.job(e.publish(testPolicy), nil)
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs/"+id+"/events", map[string]any{"event_type": "note", "payload": map[string]any{}}, nil); err != nil {
		t.Fatal(err)
	}
	e.finish(id)
	_, err := listModels(t, e, tok)
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden && ae.StatusCode != http.StatusUnauthorized {
		t.Fatalf("finished job: %v", err)
	}
}

func TestModelsListAdmin(t *testing.T) {
	e := start(t, func(o *modelgw.Options) { o.Providers[1].Models = []string{"gpt-4o-mini", "gpt-4o"} })
	id, _ := e.job(e.publish(testPolicy), nil)
	var list modelgw.ModelList
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/models?job_id="+id, nil, &list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "gpt-4o-mini" || list.Data[0].OwnedBy != "openai" {
		t.Fatalf("%+v", list)
	}
	// Without ?job_id=, and for an unknown job: refused.
	for _, q := range []string{"", "?job_id=job_nope"} {
		if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/models"+q, nil, &list); err == nil {
			t.Fatalf("%q: listed", q)
		}
	}
}

// A provider's proxy route lists that provider's models, to the OpenAI
// client (base URL .../v1/proxy/NAME/v1) and to the Anthropic client (its
// own list shape, base URL .../v1/proxy/NAME).
func TestModelsListPerProvider(t *testing.T) {
	e := start(t, func(o *modelgw.Options) {
		o.Providers[1].Models = []string{"gpt-4o-mini", "gpt-4o"}
		o.Providers[2].Models = []string{"claude-sonnet-4-5", "claude-opus-4"}
	})
	_, tok := e.job(e.publish(testPolicy), nil)
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/proxy/openai/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	page, err := oc.Models.List(context.Background())
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "gpt-4o-mini" {
		t.Fatalf("openai: %v %+v", err, page)
	}
	ac := anthropic.NewClient(aoption.WithBaseURL(e.url+"/v1/proxy/anthropic"), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0))
	ap, err := ac.Models.List(context.Background(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ap.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"claude-opus-4", "claude-sonnet-4-5"}) {
		t.Fatalf("anthropic: %v", ids)
	}
	// Unknown provider or path, and no token: refused with the SDK's error.
	for _, base := range []string{"/v1/proxy/nope/v1", "/v1/proxy/openai/v2"} {
		c := openai.NewClient(ooption.WithBaseURL(e.url+base), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
		var ae *openai.Error
		if _, err := c.Models.List(context.Background()); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %v", base, err)
		}
	}
	ac = anthropic.NewClient(aoption.WithBaseURL(e.url+"/v1/proxy/anthropic"), aoption.WithAPIKey("sk-ant-x"), aoption.WithMaxRetries(0))
	var aerr *anthropic.Error
	if _, err := ac.Models.List(context.Background(), anthropic.ModelListParams{}); !errors.As(err, &aerr) || aerr.StatusCode < 400 {
		t.Fatalf("anthropic without token: %v", err)
	}
}

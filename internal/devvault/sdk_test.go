package devvault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// start runs a dev vault on a free loopback port until the test ends.
func start(t *testing.T, opts devvault.Options) (*devvault.Server, string) {
	t.Helper()
	srv, err := devvault.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	url, err := srv.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, url
}

// sdk is the real azsecrets client pointed at the dev vault.
func sdk(t *testing.T, srv *devvault.Server, url string, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableChallengeResourceVerification: true,
	})
	if err != nil {
		t.Fatalf("azsecrets.NewClient: %v", err)
	}
	return c
}

// wrapper is the gateway's Azure connector pointed at the dev vault.
func wrapper(t *testing.T, srv *devvault.Server, url string, cred azcore.TokenCredential, maxList int) *keyvault.Azure {
	t.Helper()
	a, err := keyvault.NewAzure(srv.Vault(), url, cred, keyvault.AzureOptions{
		Transport:                            srv.Client(),
		DisableChallengeResourceVerification: true,
		Retry:                                policy.RetryOptions{MaxRetries: -1},
		MaxListEntries:                       maxList,
	})
	if err != nil {
		t.Fatalf("NewAzure: %v", err)
	}
	return a
}

type wrongToken struct{}

func (wrongToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "not-the-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// respErr asserts err is a ResponseError with the status and code.
func respErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want ResponseError %d %s, got %v", status, code, err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s", status, code, re.StatusCode, re.ErrorCode)
	}
}

func TestSDKSetGetVersions(t *testing.T) {
	srv, url := start(t, devvault.Options{})
	c := sdk(t, srv, url, srv.Credential())
	ctx := context.Background()

	set1, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{
		Value: to.Ptr("s3cret-1"), ContentType: to.Ptr("text/plain"),
		Tags: map[string]*string{"owner": to.Ptr("team-a")},
	}, nil)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	if set1.ID.Name() != "db-password" || !hex32.MatchString(set1.ID.Version()) {
		t.Fatalf("id %q", *set1.ID)
	}
	if !strings.HasPrefix(string(*set1.ID), url+"/secrets/db-password/") {
		t.Fatalf("id %q not under %s", *set1.ID, url)
	}
	if *set1.Value != "s3cret-1" || *set1.ContentType != "text/plain" || *set1.Tags["owner"] != "team-a" {
		t.Fatalf("set response %+v", set1.Secret)
	}
	a := set1.Attributes
	if a == nil || !*a.Enabled || a.Created == nil || a.Updated == nil || *a.RecoveryLevel != "Recoverable+Purgeable" || *a.RecoverableDays != 90 {
		t.Fatalf("attributes %+v", a)
	}
	if d := time.Since(*a.Created); d < -time.Minute || d > time.Minute {
		t.Fatalf("created %v", *a.Created)
	}

	set2, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("s3cret-2")}, nil)
	if err != nil {
		t.Fatalf("SetSecret 2: %v", err)
	}
	if set2.ID.Version() == set1.ID.Version() {
		t.Fatal("same version twice")
	}

	latest, err := c.GetSecret(ctx, "db-password", "", nil)
	if err != nil {
		t.Fatalf("GetSecret latest: %v", err)
	}
	if *latest.Value != "s3cret-2" || *latest.ID != *set2.ID {
		t.Fatalf("latest %q %q", *latest.Value, *latest.ID)
	}
	old, err := c.GetSecret(ctx, "db-password", set1.ID.Version(), nil)
	if err != nil {
		t.Fatalf("GetSecret by version: %v", err)
	}
	if *old.Value != "s3cret-1" || *old.ContentType != "text/plain" {
		t.Fatalf("old %q", *old.Value)
	}
	// Names are case-insensitive, as in Key Vault.
	if got, err := c.GetSecret(ctx, "DB-PASSWORD", "", nil); err != nil || *got.Value != "s3cret-2" {
		t.Fatalf("case-insensitive get: %v", err)
	}

	var versions []string
	for p := c.NewListSecretPropertiesVersionsPager("db-password", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("versions: %v", err)
		}
		for _, v := range page.Value {
			versions = append(versions, v.ID.Version())
		}
	}
	if fmt.Sprint(versions) != fmt.Sprint([]string{set1.ID.Version(), set2.ID.Version()}) {
		t.Fatalf("versions %v", versions)
	}

	_, err = c.GetSecret(ctx, "missing", "", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.GetSecret(ctx, "db-password", strings.Repeat("0", 32), nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")

	// A disabled version cannot be read.
	_, err = c.SetSecret(ctx, "off", azsecrets.SetSecretParameters{Value: to.Ptr("x"),
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
	if err != nil {
		t.Fatalf("SetSecret disabled: %v", err)
	}
	_, err = c.GetSecret(ctx, "off", "", nil)
	respErr(t, err, http.StatusForbidden, "Forbidden")
	_, err = wrapper(t, srv, url, srv.Credential(), 0).Get(ctx, "off", "")
	if !errors.Is(err, keyvault.ErrForbidden) {
		t.Fatalf("disabled via wrapper: %v", err)
	}
}

func TestSDKPaging(t *testing.T) {
	srv, url := start(t, devvault.Options{PageSize: 2})
	c := sdk(t, srv, url, srv.Credential())
	ctx := context.Background()
	want := []string{"a1", "a2", "b1", "b2", "c1", "c2", "d1"}
	for _, n := range want {
		if _, err := srv.Put(n, "v-"+n, ""); err != nil {
			t.Fatalf("Put %s: %v", n, err)
		}
	}
	for i := 0; i < 4; i++ {
		if _, err := srv.Put("many", fmt.Sprint(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, "many")

	var names []string
	pages := 0
	for p := c.NewListSecretPropertiesPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if len(page.Value) > 2 {
			t.Fatalf("page of %d", len(page.Value))
		}
		for _, s := range page.Value {
			if s.ID.Version() != "" || s.Attributes == nil || !*s.Attributes.Enabled {
				t.Fatalf("item %q %+v", *s.ID, s.Attributes)
			}
			names = append(names, s.ID.Name())
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(want) || pages != 4 {
		t.Fatalf("names %v in %d pages", names, pages)
	}

	pages = 0
	n := 0
	for p := c.NewListSecretPropertiesVersionsPager("many", nil); p.More(); pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 4 || pages != 2 {
		t.Fatalf("%d versions in %d pages", n, pages)
	}

	for _, d := range []string{"a1", "b1", "c1"} {
		if _, err := c.DeleteSecret(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	var deleted []string
	pages = 0
	for p := c.NewListDeletedSecretPropertiesPager(nil); p.More(); pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			if d.RecoveryID == nil || d.DeletedDate == nil || d.ScheduledPurgeDate == nil {
				t.Fatalf("deleted item %+v", d)
			}
			deleted = append(deleted, d.ID.Name())
		}
	}
	if fmt.Sprint(deleted) != "[a1 b1 c1]" || pages != 2 {
		t.Fatalf("deleted %v in %d pages", deleted, pages)
	}

	// The wrapper pages through everything too, and enforces its cap.
	w := wrapper(t, srv, url, srv.Credential(), 0)
	infos, err := w.ListNames(ctx)
	if err != nil || len(infos) != 5 {
		t.Fatalf("ListNames %v %v", infos, err)
	}
	if _, err := wrapper(t, srv, url, srv.Credential(), 3).ListNames(ctx); err == nil {
		t.Fatal("ListNames over the cap succeeded")
	}
	vs, err := w.ListVersions(ctx, "many")
	if err != nil || len(vs) != 4 {
		t.Fatalf("ListVersions %v %v", vs, err)
	}
}

func TestSDKSoftDeleteRecoverPurge(t *testing.T) {
	srv, url := start(t, devvault.Options{})
	c := sdk(t, srv, url, srv.Credential())
	ctx := context.Background()
	set, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("k1"), ContentType: to.Ptr("text/plain")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("k2")}, nil); err != nil {
		t.Fatal(err)
	}

	del, err := c.DeleteSecret(ctx, "api-key", nil)
	if err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	if *del.RecoveryID != url+"/deletedsecrets/api-key" || del.ID.Name() != "api-key" || !hex32.MatchString(del.ID.Version()) {
		t.Fatalf("delete response id=%q recoveryId=%q", *del.ID, *del.RecoveryID)
	}
	if del.Value != nil {
		t.Fatal("delete response carries the value")
	}
	if got := del.ScheduledPurgeDate.Sub(*del.DeletedDate); got != 90*24*time.Hour {
		t.Fatalf("retention %v", got)
	}

	_, err = c.GetSecret(ctx, "api-key", "", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.GetSecret(ctx, "api-key", set.ID.Version(), nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("k3")}, nil)
	respErr(t, err, http.StatusConflict, "Conflict")
	_, err = c.DeleteSecret(ctx, "api-key", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")

	gd, err := c.GetDeletedSecret(ctx, "api-key", nil)
	if err != nil || gd.ID.Version() != del.ID.Version() || *gd.RecoveryID != *del.RecoveryID {
		t.Fatalf("GetDeletedSecret %v", err)
	}

	rec, err := c.RecoverDeletedSecret(ctx, "api-key", nil)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if *rec.ID != *del.ID {
		t.Fatalf("recovered id %q", *rec.ID)
	}
	got, err := c.GetSecret(ctx, "api-key", set.ID.Version(), nil)
	if err != nil || *got.Value != "k1" {
		t.Fatalf("old version after recover: %v", err)
	}
	_, err = c.GetDeletedSecret(ctx, "api-key", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.RecoverDeletedSecret(ctx, "api-key", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.PurgeDeletedSecret(ctx, "api-key", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")

	if _, err := c.DeleteSecret(ctx, "api-key", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedSecret(ctx, "api-key", nil); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	_, err = c.GetDeletedSecret(ctx, "api-key", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	_, err = c.GetSecret(ctx, "api-key", "", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	// The name is free again, with a fresh history.
	if _, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: to.Ptr("k4")}, nil); err != nil {
		t.Fatalf("set after purge: %v", err)
	}
	n := 0
	for p := c.NewListSecretPropertiesVersionsPager("api-key", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Fatalf("%d versions after purge", n)
	}
}

func TestSDKAuth(t *testing.T) {
	srv, url := start(t, devvault.Options{Tenant: "tenant-x"})
	ctx := context.Background()
	if _, err := srv.Put("s", "v", ""); err != nil {
		t.Fatal(err)
	}

	_, err := sdk(t, srv, url, wrongToken{}).GetSecret(ctx, "s", "", nil)
	respErr(t, err, http.StatusUnauthorized, "Unauthorized")
	_, err = wrapper(t, srv, url, wrongToken{}, 0).Get(ctx, "s", "")
	if !errors.Is(err, keyvault.ErrForbidden) {
		t.Fatalf("wrong token via wrapper: %v", err)
	}

	// The challenge itself, on the wire.
	for _, auth := range []string{"", "Bearer wrong", "Basic " + srv.Token(), "Bearer"} {
		req, _ := http.NewRequest(http.MethodGet, url+"/secrets/s?api-version=2026-04-01", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := `Bearer authorization="https://login.local/tenant-x", resource="https://vault.local"`
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
			t.Fatalf("auth %q: %d %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// A fixed token from the options, used through keyvault.Credential.
	srv2, url2 := start(t, devvault.Options{Token: "fixed-token"})
	cred, err := keyvault.Credential(keyvault.CredentialConfig{Kind: keyvault.CredentialStatic, Token: "fixed-token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrapper(t, srv2, url2, cred, 0).Set(ctx, "a/b", "v", ""); err != nil {
		t.Fatalf("static credential: %v", err)
	}
}

func TestSDKBadInput(t *testing.T) {
	srv, url := start(t, devvault.Options{})
	c := sdk(t, srv, url, srv.Credential())
	ctx := context.Background()
	for _, name := range []string{"bad_name", "sp ace", strings.Repeat("a", 128), "dot.name"} {
		_, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
		respErr(t, err, http.StatusBadRequest, "BadParameter")
		_, err = c.GetSecret(ctx, name, "", nil)
		respErr(t, err, http.StatusBadRequest, "BadParameter")
	}
	if _, err := c.SetSecret(ctx, strings.Repeat("a", 127), azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatalf("127-character name: %v", err)
	}
	big := strings.Repeat("x", devvault.MaxValueBytes+1)
	_, err := c.SetSecret(ctx, "big", azsecrets.SetSecretParameters{Value: &big}, nil)
	respErr(t, err, http.StatusBadRequest, "BadParameter")
	if strings.Contains(err.Error(), big[:100]) {
		t.Fatal("error echoes the value")
	}
	ok := big[:devvault.MaxValueBytes]
	if _, err := c.SetSecret(ctx, "big", azsecrets.SetSecretParameters{Value: &ok}, nil); err != nil {
		t.Fatalf("value at the limit: %v", err)
	}
	_, err = c.SetSecret(ctx, "novalue", azsecrets.SetSecretParameters{ContentType: to.Ptr("x")}, nil)
	respErr(t, err, http.StatusBadRequest, "BadParameter")

	w := wrapper(t, srv, url, srv.Credential(), 0)
	for _, p := range []string{"", "/a", "a/", "a//b", "a--b", "a_b", "a/-b", strings.Repeat("a", 128)} {
		if _, err := w.Get(ctx, p, ""); !errors.Is(err, keyvault.ErrInvalid) {
			t.Errorf("Get(%q): %v", p, err)
		}
		if _, err := w.Set(ctx, p, "v", ""); !errors.Is(err, keyvault.ErrInvalid) {
			t.Errorf("Set(%q): %v", p, err)
		}
	}
	if _, err := w.Get(ctx, "big", ".."); !errors.Is(err, keyvault.ErrInvalid) {
		t.Errorf("version '..': %v", err)
	}
	if _, err := w.Set(ctx, "big", big, ""); !errors.Is(err, keyvault.ErrInvalid) || strings.Contains(err.Error(), big[:100]) {
		t.Errorf("big value: %v", err)
	}

	// Missing api-version, unknown route, wrong method.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/secrets/big", http.StatusBadRequest},
		{"GET", "/keys/x?api-version=7.5", http.StatusNotFound},
		{"POST", "/secrets/big?api-version=7.5", http.StatusMethodNotAllowed},
		{"GET", "/secrets?api-version=7.5&maxresults=26", http.StatusBadRequest},
		{"GET", "/secrets?api-version=7.5&$skiptoken=NOT_VALID", http.StatusBadRequest},
		{"GET", "/secrets/big/versions?api-version=7.5&$skiptoken=-1", http.StatusBadRequest},
		{"GET", "/secrets/big/?api-version=7.5", http.StatusOK},
		{"GET", "/secrets/nothing/versions?api-version=7.5", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

func TestWrapperLifecycle(t *testing.T) {
	srv, url := start(t, devvault.Options{})
	w := wrapper(t, srv, url, srv.Credential(), 0)
	ctx := context.Background()
	const value = "hunter2-very-secret"

	s1, err := w.Set(ctx, "agent/app/db-password", value, "text/plain")
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	if s1.Vault != "kv-dev" || s1.Path != "agent/app/db-password" || !hex32.MatchString(s1.Version) ||
		s1.Value != value || s1.ContentType != "text/plain" || !s1.Enabled || s1.Created.IsZero() {
		t.Fatalf("Set returned %+v", s1)
	}
	s2, err := w.Set(ctx, "agent/app/db-password", value+"-2", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := w.Get(ctx, "agent/app/db-password", ""); err != nil || got.Value != value+"-2" || got.Version != s2.Version {
		t.Fatalf("Get latest %+v %v", got, err)
	}
	if got, err := w.Get(ctx, "agent/app/db-password", s1.Version); err != nil || got.Value != value {
		t.Fatalf("Get by version %+v %v", got, err)
	}
	if _, err := w.Set(ctx, "agent/other", "x", ""); err != nil {
		t.Fatal(err)
	}
	// A name no path maps to is not listed.
	if _, err := srv.Put("odd---name", "x", ""); err != nil {
		t.Fatal(err)
	}
	names, err := w.ListNames(ctx)
	if err != nil || len(names) != 2 || names[0].Path != "agent/app/db-password" || names[1].Path != "agent/other" || names[0].Version != "" {
		t.Fatalf("ListNames %+v %v", names, err)
	}
	vs, err := w.ListVersions(ctx, "agent/app/db-password")
	if err != nil || len(vs) != 2 {
		t.Fatalf("ListVersions %+v %v", vs, err)
	}
	if _, err := w.ListVersions(ctx, "agent/none"); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("ListVersions of nothing: %v", err)
	}

	d, err := w.Delete(ctx, "agent/app/db-password")
	if err != nil || d.Path != "agent/app/db-password" || d.RecoveryID == "" || d.DeletedAt.IsZero() ||
		d.ScheduledPurgeDate.Sub(d.DeletedAt) != 90*24*time.Hour {
		t.Fatalf("Delete %+v %v", d, err)
	}
	if _, err := w.Get(ctx, "agent/app/db-password", ""); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	_, err = w.Set(ctx, "agent/app/db-password", value, "")
	if !errors.Is(err, keyvault.ErrConflict) {
		t.Fatalf("Set deleted: %v", err)
	}
	if strings.Contains(err.Error(), value) {
		t.Fatalf("error carries the value: %v", err)
	}
	if _, err := w.ListVersions(ctx, "agent/app/db-password"); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("ListVersions deleted: %v", err)
	}
	if _, err := w.Delete(ctx, "agent/app/db-password"); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("Delete twice: %v", err)
	}
	info, err := w.Recover(ctx, "agent/app/db-password")
	if err != nil || info.Version != s2.Version || info.Path != "agent/app/db-password" {
		t.Fatalf("Recover %+v %v", info, err)
	}
	if got, err := w.Get(ctx, "agent/app/db-password", s1.Version); err != nil || got.Value != value {
		t.Fatalf("Get after recover %+v %v", got, err)
	}
	if err := w.Purge(ctx, "agent/app/db-password"); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("Purge live secret: %v", err)
	}
	if _, err := w.Delete(ctx, "agent/app/db-password"); err != nil {
		t.Fatal(err)
	}
	if err := w.Purge(ctx, "agent/app/db-password"); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if _, err := w.Recover(ctx, "agent/app/db-password"); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("Recover purged: %v", err)
	}
	if _, err := w.Get(ctx, "agent/app/db-password", ""); !errors.Is(err, keyvault.ErrNotFound) {
		t.Fatalf("Get purged: %v", err)
	}

	// Canceled contexts surface as such.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.Get(cctx, "agent/other", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

package keyvault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory Client for unit tests of other packages. It follows
// the dev vault's (and the service's) rules: every Set adds a version with
// a random 32-hex id; Delete is a soft delete of all versions, after which
// Get and ListVersions give ErrNotFound and Set gives ErrConflict until
// Recover or Purge; names are case-insensitive; values are at most
// MaxValueBytes. Times are whole seconds. It is safe for concurrent use.
type Fake struct {
	// Fail, if set, is called first by every method with the operation
	// ("get", "set", "delete", "recover", "purge", "list", "versions") and
	// the path ("" for list); a non-nil result is returned as the error.
	Fail func(op, path string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	vault   string
	mu      sync.Mutex
	secrets map[string]*fakeSecret // by lower-case name
}

type fakeSecret struct {
	name     string   // as first set
	versions []Secret // oldest first
	deleted  *Deleted
}

var _ Client = (*Fake)(nil)

// NewFake returns an empty fake vault called vault (in lower case, as
// CanonicalVault would give it).
func NewFake(vault string) *Fake {
	return &Fake{vault: lowerASCII(vault), secrets: map[string]*fakeSecret{}}
}

// Vault is the vault's name.
func (f *Fake) Vault() string { return f.vault }

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (f *Fake) hook(op, path string) error {
	if f.Fail != nil {
		return f.Fail(op, path)
	}
	return nil
}

// lookup checks the hook and the path, and returns the entry (maybe nil)
// with f.mu held; the caller must unlock.
// *path is replaced by its canonical form (CanonicalSecretPath).
func (f *Fake) lookup(op string, path *string) (string, *fakeSecret, error) {
	if err := f.hook(op, *path); err != nil {
		return "", nil, err
	}
	canonical, err := CanonicalSecretPath(*path)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: malformed secret path %q", ErrInvalid, op, clip(*path))
	}
	*path = canonical
	name, _ := ToName(canonical)
	f.mu.Lock()
	return name, f.secrets[name], nil
}

// Get returns a version of a live secret; version "" is the latest.
func (f *Fake) Get(_ context.Context, path, version string) (Secret, error) {
	_, e, err := f.lookup("get", &path)
	if err != nil {
		return Secret{}, err
	}
	defer f.mu.Unlock()
	if !validVersion(version) {
		return Secret{}, fmt.Errorf("%w: get %s: malformed version %q", ErrInvalid, path, clip(version))
	}
	if e == nil || e.deleted != nil {
		return Secret{}, fmt.Errorf("%w: get %s", ErrNotFound, path)
	}
	s := e.versions[len(e.versions)-1]
	if version != "" {
		found := false
		for _, v := range e.versions {
			if strings.EqualFold(v.Version, version) {
				s, found = v, true
				break
			}
		}
		if !found {
			return Secret{}, fmt.Errorf("%w: get %s version %s", ErrNotFound, path, version)
		}
	}
	s.Path = path
	return s, nil
}

// Set adds a version.
func (f *Fake) Set(_ context.Context, path, value, contentType string) (Secret, error) {
	name, e, err := f.lookup("set", &path)
	if err != nil {
		return Secret{}, err
	}
	defer f.mu.Unlock()
	if len(value) > MaxValueBytes {
		return Secret{}, fmt.Errorf("%w: set %s: value is %d bytes, over the %d-byte limit", ErrInvalid, path, len(value), MaxValueBytes)
	}
	if e != nil && e.deleted != nil {
		return Secret{}, fmt.Errorf("%w: set %s: the secret is deleted but recoverable; recover or purge it first", ErrConflict, path)
	}
	if e == nil {
		e = &fakeSecret{name: name}
		f.secrets[name] = e
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	now := f.now()
	s := Secret{Vault: f.vault, Path: path, Version: hex.EncodeToString(id[:]), Value: value,
		ContentType: contentType, Enabled: true, Created: now, Updated: now}
	e.versions = append(e.versions, s)
	return s, nil
}

// Delete soft-deletes a live secret.
func (f *Fake) Delete(_ context.Context, path string) (Deleted, error) {
	name, e, err := f.lookup("delete", &path)
	if err != nil {
		return Deleted{}, err
	}
	defer f.mu.Unlock()
	if e == nil || e.deleted != nil {
		return Deleted{}, fmt.Errorf("%w: delete %s", ErrNotFound, path)
	}
	now := f.now()
	e.deleted = &Deleted{Path: path, DeletedAt: now, ScheduledPurgeDate: now.Add(90 * 24 * time.Hour),
		RecoveryID: "https://" + f.vault + ".vault.azure.net/deletedsecrets/" + name}
	return *e.deleted, nil
}

// Recover undeletes a soft-deleted secret and describes its latest version.
func (f *Fake) Recover(_ context.Context, path string) (Info, error) {
	_, e, err := f.lookup("recover", &path)
	if err != nil {
		return Info{}, err
	}
	defer f.mu.Unlock()
	if e == nil || e.deleted == nil {
		return Info{}, fmt.Errorf("%w: recover %s: no deleted secret", ErrNotFound, path)
	}
	e.deleted = nil
	i := infoOf(e.versions[len(e.versions)-1])
	i.Path = path
	return i, nil
}

// Purge removes a soft-deleted secret for good.
func (f *Fake) Purge(_ context.Context, path string) error {
	name, e, err := f.lookup("purge", &path)
	if err != nil {
		return err
	}
	defer f.mu.Unlock()
	if e == nil || e.deleted == nil {
		return fmt.Errorf("%w: purge %s: no deleted secret", ErrNotFound, path)
	}
	delete(f.secrets, name)
	return nil
}

// ListNames lists live secrets (latest version's info, no version), sorted
// by path.
func (f *Fake) ListNames(context.Context) ([]Info, error) {
	if err := f.hook("list", ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Info{}
	for _, e := range f.secrets {
		if e.deleted != nil {
			continue
		}
		i := infoOf(e.versions[len(e.versions)-1])
		i.Path, i.Version = lowerASCII(FromName(e.name)), ""
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ListVersions lists a live secret's versions, oldest first.
func (f *Fake) ListVersions(_ context.Context, path string) ([]Info, error) {
	_, e, err := f.lookup("versions", &path)
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	if e == nil || e.deleted != nil {
		return nil, fmt.Errorf("%w: versions %s: no such secret", ErrNotFound, path)
	}
	out := make([]Info, len(e.versions))
	for i, v := range e.versions {
		out[i] = infoOf(v)
		out[i].Path = path
	}
	return out, nil
}

func infoOf(s Secret) Info {
	return Info{Path: s.Path, Version: s.Version, ContentType: s.ContentType,
		Enabled: s.Enabled, Created: s.Created, Updated: s.Updated}
}

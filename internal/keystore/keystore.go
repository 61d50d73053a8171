// Package keystore keeps a node's long-lived secrets in its data
// directory: one Ed25519 key file per role (keys/<role>.key.json) and the
// admin token, each created on first use with mode 0600.
package keystore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/signer"
)

// Dir is a data directory.
type Dir string

// KeyPath returns the key file path of a role.
func (d Dir) KeyPath(role string) string { return filepath.Join(string(d), "keys", role+".key.json") }

// Key loads the role's key, creating it (0600) when it does not exist.
func (d Dir) Key(role string) (*signer.Key, bool, error) {
	path := d.KeyPath(role)
	k, err := signer.LoadFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	k, err = signer.Generate()
	if err != nil {
		return nil, false, err
	}
	if err := signer.WriteFile(path, k, false); err != nil {
		if errors.Is(err, signer.ErrExist) { // created concurrently
			k, err = signer.LoadFile(path)
			return k, false, err
		}
		return nil, false, err
	}
	return k, true, nil
}

// TokenPath is the admin token file.
func (d Dir) TokenPath() string { return filepath.Join(string(d), "admin.token") }

// AdminToken loads the admin token, creating a random one (0600) on first
// use.
func (d Dir) AdminToken() (string, bool, error) {
	path := d.TokenPath()
	if data, err := os.ReadFile(path); err == nil {
		st, _ := os.Stat(path)
		if st != nil && st.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("keystore: %s is readable by group or others (chmod 600)", path)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", false, fmt.Errorf("keystore: %s is empty", path)
		}
		return tok, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	tok := "clawea_admin_" + b64u.Encode(b)
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return d.AdminToken()
		}
		return "", false, err
	}
	defer f.Close()
	if _, err := f.WriteString(tok + "\n"); err != nil {
		return "", false, err
	}
	return tok, true, nil
}

// SecretPath is the file of a named 32-byte secret.
func (d Dir) SecretPath(name string) string {
	return filepath.Join(string(d), "keys", name+".secret")
}

// Secret loads a named 32-byte secret (the custody key-encryption key, the
// tool gateway's commitment secret), creating a random one (0600) on first
// use. It reports whether it created the file.
func (d Dir) Secret(name string) ([]byte, bool, error) {
	path := d.SecretPath(name)
	secret, err := os.ReadFile(path)
	if err == nil {
		if st, _ := os.Stat(path); st != nil && st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("keystore: %s is readable by group or others (chmod 600)", path)
		}
		if len(secret) != 32 {
			return nil, false, fmt.Errorf("keystore: %s must hold 32 bytes", path)
		}
		return secret, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	secret = make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return d.Secret(name)
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(secret); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return secret, true, nil
}

// Default returns the data directory from CLAWEA_DATA_DIR, or ~/.clawea.
func Default() Dir {
	if d := os.Getenv("CLAWEA_DATA_DIR"); d != "" {
		return Dir(d)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return Dir(".clawea")
	}
	return Dir(filepath.Join(home, ".clawea"))
}

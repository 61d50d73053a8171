// Package openclaw holds clawea's OpenClaw plugin: TypeScript that
// OpenClaw loads itself (README.md). The Go side embeds the plugin's files
// so that the clawea binary can write them out for OpenClaw to load
// (clawea openclaw plugin install, clawea openclaw config --plugin).
package openclaw

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed index.ts package.json openclaw.plugin.json README.md src/*.ts
var files embed.FS

// PluginID is the plugin's id (openclaw.plugin.json, plugins.entries key).
const PluginID = "clawea"

// Files lists the plugin's files (slash paths, sorted), tests excluded.
func Files() []string {
	var out []string
	fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Digest is a SHA-256 over the plugin's files (paths and contents): the
// version of the plugin this binary carries.
func Digest() string {
	h := sha256.New()
	for _, p := range Files() {
		b, _ := files.ReadFile(p)
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Install writes the plugin's files under dir (created with mode 0755;
// files 0644, each written to a temporary file and renamed). A file of
// the plugin already there is replaced; other files are left alone. dir
// must not be a symlink.
func Install(dir string) error {
	if dir == "" {
		return errors.New("no directory")
	}
	if fi, err := os.Lstat(dir); err == nil {
		if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (symlinks are refused)", dir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, p := range Files() {
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".clawea-plugin-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(b)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o644)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), dst)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return werr
		}
	}
	return nil
}

// Installed reports whether dir holds exactly this binary's plugin files.
func Installed(dir string) bool {
	for _, p := range Files() {
		want, _ := files.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || string(got) != string(want) {
			return false
		}
	}
	return true
}

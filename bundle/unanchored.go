package bundle

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// UnanchoredVersion is the version of the clawea_unanchored metadata entry.
const UnanchoredVersion = "1"

// Unanchored is the metadata entry (clawea_unanchored) that commits a
// proof bundle to the side-effect and human-approval records of its run
// that it cannot list: the reference verifier accepts those records only
// when they are anchored to a span declared by a gateway receipt of the
// same bundle, and a run with no model call before a write has none. The
// records travel beside the bundle; the entry holds their number and the
// root of UnanchoredRoot, so its size does not depend on how many there
// are.
type Unanchored struct {
	Version string `json:"version"`
	Count   int    `json:"count"`
	Root    string `json:"root_b64u"`
}

// UnanchoredRoot is the root a clawea_unanchored entry names for a set of
// records (side-effect or human-approval records, each a JSON object as
// stored): each record is parsed, the records are sorted by receipt_id
// (byte order; equal ids by their RFC 8785 form), and the root is the
// base64url SHA-256 of the RFC 8785 (JCS) form of the array. A record that
// is not a JSON object with a non-empty string receipt_id is an error.
func UnanchoredRoot(records [][]byte) (string, error) {
	type rec struct {
		id  string
		jcs []byte
		v   canon.Value
	}
	rs := make([]rec, 0, len(records))
	for i, raw := range records {
		v, err := canon.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("unanchored record %d: %w", i, err)
		}
		if !v.IsObject() {
			return "", fmt.Errorf("unanchored record %d is not a JSON object", i)
		}
		id, ok := v.StringOf("receipt_id")
		if !ok || id == "" {
			return "", fmt.Errorf("unanchored record %d has no receipt_id", i)
		}
		rs = append(rs, rec{id: id, jcs: canon.AppendJCS(nil, &v), v: v})
	}
	slices.SortFunc(rs, func(a, b rec) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return strings.Compare(string(a.jcs), string(b.jcs))
	})
	arr := canon.Value{Kind: canon.Array, Items: make([]canon.Value, len(rs))}
	for i := range rs {
		arr.Items[i] = rs[i].v
	}
	return b64u.SHA256(canon.AppendJCS(nil, &arr)), nil
}

// NewUnanchored returns the clawea_unanchored entry for records, or nil
// when there are none.
func NewUnanchored(records [][]byte) (*Unanchored, error) {
	if len(records) == 0 {
		return nil, nil
	}
	root, err := UnanchoredRoot(records)
	if err != nil {
		return nil, err
	}
	return &Unanchored{Version: UnanchoredVersion, Count: len(records), Root: root}, nil
}

// ErrUnanchoredMismatch is returned by CheckUnanchored when records do not
// match an entry.
var ErrUnanchoredMismatch = errors.New("the records do not match clawea_unanchored")

// CheckUnanchored reports whether records are exactly the ones entry
// commits to (a nil entry commits to none).
func CheckUnanchored(entry *Unanchored, records [][]byte) error {
	if entry == nil {
		if len(records) != 0 {
			return fmt.Errorf("%w: %d records, and the bundle declares none", ErrUnanchoredMismatch, len(records))
		}
		return nil
	}
	if entry.Version != UnanchoredVersion {
		return fmt.Errorf("%w: unknown version %q", ErrUnanchoredMismatch, entry.Version)
	}
	if entry.Count != len(records) {
		return fmt.Errorf("%w: %d records, the bundle declares %d", ErrUnanchoredMismatch, len(records), entry.Count)
	}
	root, err := UnanchoredRoot(records)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnanchoredMismatch, err)
	}
	if root != entry.Root {
		return fmt.Errorf("%w: root %s, the bundle declares %s", ErrUnanchoredMismatch, root, entry.Root)
	}
	return nil
}

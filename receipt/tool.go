package receipt

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/signer"
)

// ToolV1 is a tool receipt v1 payload: unsalted hashes of arguments and
// result.
type ToolV1 struct {
	Version       string   `json:"receipt_version"`
	ReceiptID     string   `json:"receipt_id"`
	ToolName      string   `json:"tool_name"`
	ToolVersion   string   `json:"tool_version,omitempty"`
	ArgsHash      string   `json:"args_hash_b64u"`
	ResultHash    string   `json:"result_hash_b64u"`
	ResultStatus  string   `json:"result_status,omitempty"`
	HashAlgorithm string   `json:"hash_algorithm"`
	AgentDID      string   `json:"agent_did"`
	Timestamp     string   `json:"timestamp"`
	LatencyMS     int64    `json:"latency_ms"`
	Binding       *Binding `json:"binding,omitempty"`
}

// ToolV2 is a tool receipt v2 payload: salted commitments to arguments and
// result that can later be opened field by field (selective disclosure).
type ToolV2 struct {
	Version          string               `json:"receipt_version"`
	ReceiptID        string               `json:"receipt_id"`
	ToolName         string               `json:"tool_name"`
	ToolVersion      string               `json:"tool_version,omitempty"`
	ArgsHash         string               `json:"args_hash_b64u"`
	ResultHash       string               `json:"result_hash_b64u"`
	ResultStatus     string               `json:"result_status,omitempty"`
	HashAlgorithm    string               `json:"hash_algorithm"`
	AgentDID         string               `json:"agent_did"`
	Timestamp        string               `json:"timestamp"`
	LatencyMS        int64                `json:"latency_ms"`
	ArgsSalt         string               `json:"args_salt_b64u"`
	ResultSalt       string               `json:"result_salt_b64u"`
	Binding          *Binding             `json:"binding,omitempty"`
	ArgsDisclosure   *SelectiveDisclosure `json:"args_disclosure,omitempty"`
	ResultDisclosure *SelectiveDisclosure `json:"result_disclosure,omitempty"`
}

// Result statuses.
const (
	StatusSuccess = "success"
	StatusError   = "error"
	StatusTimeout = "timeout"
)

// SignV1 signs a v1 tool receipt as envelope version 1.
func (t *ToolV1) SignV1(s signer.Signer, issuedAt time.Time) (*envelope.Envelope, error) {
	t.Version, t.HashAlgorithm = "1", envelope.HashSHA256
	return envelope.Sign(s, envelope.TypeTool, t, envelope.Options{IssuedAt: issuedAt})
}

// Sign signs a v2 tool receipt as envelope version 2; co-signatures can be
// added to the result with CoSign.
func (t *ToolV2) Sign(s signer.Signer, issuedAt time.Time) (*envelope.Envelope, error) {
	t.Version, t.HashAlgorithm = "2", envelope.HashSHA256
	return envelope.Sign(s, envelope.TypeTool, t, envelope.Options{Version: envelope.Version2, IssuedAt: issuedAt})
}

// DisclosureAlgorithm is the only selective disclosure algorithm.
const DisclosureAlgorithm = "vir_v2_typed_lexicographical"

// SelectiveDisclosure opens some leaves of a commitment.
type SelectiveDisclosure struct {
	Algorithm       string                   `json:"disclosure_algorithm"`
	MerkleRoot      string                   `json:"merkle_root_b64u"`
	RedactedLeaves  []string                 `json:"redacted_leaf_hashes_b64u"`
	DisclosedLeaves map[string]DisclosedLeaf `json:"disclosed_leaves"`
}

// DisclosedLeaf is one opened leaf.
type DisclosedLeaf struct {
	Type  string      `json:"type"`
	Value canon.Value `json:"value"`
	Salt  string      `json:"salt_b64u"`
}

// Commitment is a salted commitment to a JSON value, split into leaves: an
// object commits each top-level member as leaf "<prefix>.<key>", anything
// else is one leaf "<prefix>". The root (the receipt's args or result hash)
// is SHA-256 of the JCS of the sorted leaf hashes, each leaf hash being
// SHA-256 of "<path>:" + JCS({type, value, salt_b64u}).
//
// Leaf salts are HMAC-SHA-256(secret, salt ‖ path): the published salt is a
// per-receipt nonce and the secret stays with the gateway, so a leaf can be
// opened later without storing per-leaf salts, and unopened low-entropy
// values cannot be guessed from the receipt.
type Commitment struct {
	Root   string
	Salt   string // published as args_salt_b64u / result_salt_b64u
	leaves map[string]DisclosedLeaf
	hashes map[string]string
}

// ErrNoSecret is returned when a commitment is built without a secret.
var ErrNoSecret = errors.New("receipt: commitment secret must be at least 16 bytes")

// Commit builds a commitment to value under prefix ("args" or "result").
// salt may be empty, in which case a random 32-byte salt is drawn.
func Commit(prefix string, value canon.Value, secret []byte, salt string) (*Commitment, error) {
	if len(secret) < 16 {
		return nil, ErrNoSecret
	}
	if salt == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("receipt: %w", err)
		}
		salt = b64u.Encode(b)
	}
	n := 1
	if value.Kind == canon.Object && len(value.Members) > 0 {
		n = len(value.Members)
	}
	c := &Commitment{Salt: salt, leaves: make(map[string]DisclosedLeaf, n), hashes: make(map[string]string, n)}
	all := make([]string, 0, n)
	mac := hmac.New(sha256.New, secret)
	var sum [sha256.Size]byte
	var buf []byte
	add := func(path string, v canon.Value) {
		mac.Reset()
		mac.Write([]byte(salt))
		mac.Write([]byte{0})
		mac.Write([]byte(path))
		leaf := DisclosedLeaf{Type: v.Kind.String(), Value: v, Salt: b64u.Encode(mac.Sum(sum[:0]))}
		c.leaves[path] = leaf
		buf = appendLeafPreimage(buf[:0], path, &leaf)
		h := b64u.SHA256(buf)
		c.hashes[path] = h
		all = append(all, h)
	}
	if value.Kind == canon.Object && len(value.Members) > 0 {
		for _, m := range value.Members {
			add(prefix+"."+m.Key, m.Value)
		}
	} else {
		add(prefix, value)
	}
	if len(c.hashes) != len(all) { // a repeated key: one leaf per path
		all = all[:0]
		for _, h := range c.hashes {
			all = append(all, h)
		}
	}
	c.Root = Root(all)
	return c, nil
}

// appendLeafPreimage appends what a leaf hash covers: path ":" and the JCS
// of {salt_b64u, type, value} (members in JCS order).
func appendLeafPreimage(dst []byte, path string, leaf *DisclosedLeaf) []byte {
	dst = append(dst, path...)
	dst = append(dst, `:{"salt_b64u":`...)
	dst = canon.AppendString(dst, leaf.Salt)
	dst = append(dst, `,"type":`...)
	dst = canon.AppendString(dst, leaf.Type)
	dst = append(dst, `,"value":`...)
	dst = canon.AppendJCS(dst, &leaf.Value)
	return append(dst, '}')
}

// Paths lists the leaf paths in sorted order.
func (c *Commitment) Paths() []string {
	paths := make([]string, 0, len(c.leaves))
	for p := range c.leaves {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// PathsUpTo returns the leaf paths, sorted, whose values' compact JSON is at
// most max bytes: what a receipt can disclose while staying small.
func (c *Commitment) PathsUpTo(max int) []string {
	paths := make([]string, 0, len(c.leaves))
	for p, l := range c.leaves {
		if len(canon.AppendCompact(nil, &l.Value)) <= max {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	return paths
}

// Disclose opens the named leaves and keeps the others as hashes.
func (c *Commitment) Disclose(paths ...string) (*SelectiveDisclosure, error) {
	d := &SelectiveDisclosure{Algorithm: DisclosureAlgorithm, MerkleRoot: c.Root, RedactedLeaves: []string{}, DisclosedLeaves: map[string]DisclosedLeaf{}}
	for _, p := range paths {
		leaf, ok := c.leaves[p]
		if !ok {
			return nil, fmt.Errorf("receipt: no leaf %q in the commitment", p)
		}
		d.DisclosedLeaves[p] = leaf
	}
	for _, p := range c.Paths() {
		if _, open := d.DisclosedLeaves[p]; !open {
			d.RedactedLeaves = append(d.RedactedLeaves, c.hashes[p])
		}
	}
	slices.Sort(d.RedactedLeaves)
	return d, nil
}

// LeafHash is the hash of one leaf at path.
func LeafHash(path string, leaf DisclosedLeaf) string {
	return b64u.SHA256(appendLeafPreimage(nil, path, &leaf))
}

// LeafHashOf hashes a parsed leaf object: SHA-256 of path ":" and the JCS of
// its type, value and salt_b64u members.
func LeafHashOf(path string, leaf *canon.Value) string {
	obj := canon.Value{Kind: canon.Object}
	for _, k := range [...]string{"type", "value", "salt_b64u"} {
		if v := leaf.Get(k); v != nil {
			obj.Members = append(obj.Members, canon.Member{Key: k, Value: *v})
		}
	}
	return b64u.SHA256(append([]byte(path+":"), canon.AppendJCS(nil, &obj)...))
}

// Root is SHA-256 of the JCS of the leaf hashes sorted ascending.
func Root(leafHashes []string) string {
	sorted := slices.Clone(leafHashes)
	slices.SortFunc(sorted, canon.CompareUTF16)
	size := 2
	for _, h := range sorted {
		size += len(h) + 3
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	for i, h := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = canon.AppendString(b, h)
	}
	return b64u.SHA256(append(b, ']'))
}

// HashJSON returns the unsalted b64u SHA-256 of a value's JCS form, the v1
// args and result hash.
func HashJSON(v canon.Value) string { return b64u.SHA256(canon.AppendJCS(nil, &v)) }

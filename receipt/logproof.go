package receipt

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/signer"
)

// LogInclusionProof proves that a leaf is in a signed Receipt Transparency
// log root (log_inclusion_proof.v1).
type LogInclusionProof struct {
	Version         string        `json:"proof_version"`
	LogID           string        `json:"log_id"`
	TreeSize        int64         `json:"tree_size"`
	LeafHash        string        `json:"leaf_hash_b64u"`
	RootHash        string        `json:"root_hash_b64u"`
	AuditPath       []string      `json:"audit_path"`
	RootPublishedAt string        `json:"root_published_at"`
	RootSignature   RootSignature `json:"root_signature"`
	Metadata        ProofMetadata `json:"metadata"`
}

// RootSignature signs the ASCII of root_hash_b64u.
type RootSignature struct {
	SignerDID string `json:"signer_did"`
	Signature string `json:"sig_b64u"`
}

// ProofMetadata carries the leaf index the verifier needs.
type ProofMetadata struct {
	LeafIndex       int64  `json:"leaf_index"`
	MerkleAlgorithm string `json:"merkle_algorithm,omitempty"`
}

// MerkleAlgorithm describes the protocol's tree hashing.
const MerkleAlgorithm = "sha256(left||right), duplicate-last for odd levels"

// MerkleTree is the protocol's transparency tree: SHA-256(left ‖ right)
// over raw 32-byte digests, odd levels duplicating their last node. (It is
// not RFC 6962: leaves and nodes carry no prefix.)
type MerkleTree struct {
	levels [][][]byte
}

// NewMerkleTree builds a tree over b64u SHA-256 leaf hashes.
func NewMerkleTree(leafHashes []string) (*MerkleTree, error) {
	if len(leafHashes) == 0 {
		return nil, errors.New("receipt: a tree needs at least one leaf")
	}
	level := make([][]byte, len(leafHashes))
	for i, h := range leafHashes {
		b, err := b64u.Decode(h)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("receipt: leaf %d is not a b64u SHA-256 digest", i)
		}
		level[i] = b
	}
	t := &MerkleTree{levels: [][][]byte{level}}
	for len(level) > 1 {
		next := make([][]byte, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			right := level[i]
			if i+1 < len(level) {
				right = level[i+1]
			}
			h := sha256.New()
			h.Write(level[i])
			h.Write(right)
			next = append(next, h.Sum(nil))
		}
		t.levels = append(t.levels, next)
		level = next
	}
	return t, nil
}

// Root returns the b64u root hash.
func (t *MerkleTree) Root() string { return b64u.Encode(t.levels[len(t.levels)-1][0]) }

// Path returns the audit path of leaf i.
func (t *MerkleTree) Path(i int) []string {
	path := []string{}
	for _, level := range t.levels[:len(t.levels)-1] {
		sib := i ^ 1
		if sib >= len(level) {
			sib = i
		}
		path = append(path, b64u.Encode(level[sib]))
		i /= 2
	}
	return path
}

// Prove builds a signed inclusion proof of leaf i.
func (t *MerkleTree) Prove(logID string, i int, s signer.Signer, publishedAt time.Time) (*LogInclusionProof, error) {
	leaves := t.levels[0]
	if i < 0 || i >= len(leaves) {
		return nil, fmt.Errorf("receipt: leaf index %d out of range", i)
	}
	root := t.Root()
	sig, err := s.Sign([]byte(root))
	if err != nil {
		return nil, err
	}
	return &LogInclusionProof{
		Version: "1", LogID: logID, TreeSize: int64(len(leaves)),
		LeafHash: b64u.Encode(leaves[i]), RootHash: root, AuditPath: t.Path(i),
		RootPublishedAt: envelope.FormatTime(publishedAt),
		RootSignature:   RootSignature{SignerDID: s.DID(), Signature: b64u.Encode(sig)},
		Metadata:        ProofMetadata{LeafIndex: int64(i), MerkleAlgorithm: MerkleAlgorithm},
	}, nil
}

// M1Signature is a Protocol-M signature envelope: a commit message
// signature (type message_signature) or a file signature
// (artifact_signature). Fields keep the reference's names.
type M1Signature struct {
	Version   string         `json:"version"`
	Type      string         `json:"type"`
	Algo      string         `json:"algo"`
	DID       string         `json:"did"`
	Message   string         `json:"message,omitempty"`
	Hash      *M1Hash        `json:"hash,omitempty"`
	Artifact  *M1Artifact    `json:"artifact,omitempty"`
	CreatedAt string         `json:"createdAt"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	Signature string         `json:"signature"`
}

// M1Hash is an artifact digest.
type M1Hash struct {
	Algo  string `json:"algo"`
	Value string `json:"value"`
}

// M1Artifact names a signed file.
type M1Artifact struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// SignCommit returns an m1 message signature over "commit:<sha>".
func SignCommit(s signer.Signer, commitSHA string, at time.Time) (*M1Signature, error) {
	m := &M1Signature{Version: "m1", Type: "message_signature", Algo: "ed25519", DID: s.DID(),
		Message: "commit:" + commitSHA, CreatedAt: envelope.FormatTime(at)}
	return m, m.sign(s)
}

// sign sets Signature to standard base64 of Ed25519 over the JCS of the
// object with an empty signature.
func (m *M1Signature) sign(s signer.Signer) error {
	m.Signature = ""
	jcs, err := canon.MarshalJCS(m)
	if err != nil {
		return err
	}
	sig, err := s.Sign(jcs)
	if err != nil {
		return err
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("receipt: timestamp %q is not RFC 3339: %w", s, err)
	}
	return t, nil
}

package verify

import (
	"encoding/base64"
	"strings"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// CommitSig verifies a Protocol-M "m1" signature: a message signature over
// commit:<hex> (commit.sig.json) or, with type artifact_signature, a file
// signature. The signature (standard base64) is over the JCS form of the
// object with signature set to "".
func CommitSig(data []byte, opt Options) *Result {
	v, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	return commitSigValue(&v)
}

func commitSigValue(v *canon.Value) *Result {
	if !v.IsObject() {
		return fail(MalformedEnvelope, "signature must be a JSON object")
	}
	if str0(v, "version") != "m1" {
		return fail(UnknownVersion, "version must be m1")
	}
	typ := str0(v, "type")
	if typ != "message_signature" && typ != "artifact_signature" {
		return fail(UnknownType, "type must be message_signature or artifact_signature")
	}
	if str0(v, "algo") != "ed25519" {
		return fail(UnknownAlgo, "algo must be ed25519")
	}
	if typ == "message_signature" && !isCommitMessage(str0(v, "message")) {
		return fail(CommitMessageInvalid, "message must be commit:<7-64 hex characters>")
	}
	did := str0(v, "did")
	key, err := didkey.PublicKey(did)
	if err != nil {
		return fail(InvalidDIDFormat, "did must be an Ed25519 did:key")
	}
	sigText, ok := v.StringOf("signature")
	if !ok || sigText == "" {
		return fail(MalformedEnvelope, "signature missing")
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil || len(sig) != 64 {
		return fail(MalformedEnvelope, "signature must be 64 bytes of standard base64")
	}
	c := v.Clone()
	c.Set("signature", canon.NewString(""))
	if !didkey.NewKey(key).Verify(canon.AppendJCS(nil, &c), sig) {
		return fail(SignatureInvalid, "signature does not verify")
	}
	res := pass()
	res.SignerDID = did
	return res
}

func isCommitMessage(m string) bool {
	hex, ok := strings.CutPrefix(strings.ToLower(m), "commit:")
	if !ok || len(hex) < 7 || len(hex) > 64 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

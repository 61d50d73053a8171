package jobs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"

	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/signer"
)

// Custody seals custodial agent keys with AES-256-GCM under a node secret
// kept in the data directory (keys/custody.secret, 0600), so that the
// database alone does not hold usable agent keys.
type Custody struct {
	aead cipher.AEAD
}

// OpenCustody loads (or creates) the custody secret.
func OpenCustody(dir keystore.Dir) (*Custody, error) {
	secret, _, err := dir.Secret("custody")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Custody{aead: aead}, nil
}

// Seal encrypts an agent key, bound to its DID.
func (c *Custody) Seal(k *signer.Key) ([]byte, error) {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return c.aead.Seal(nonce, nonce, k.Seed(), []byte(k.DID())), nil
}

// Open decrypts an agent key and checks it is the DID's.
func (c *Custody) Open(did string, sealed []byte) (*signer.Key, error) {
	n := c.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("jobs: sealed key too short")
	}
	seed, err := c.aead.Open(nil, sealed[:n], sealed[n:], []byte(did))
	if err != nil {
		return nil, errors.New("jobs: cannot unseal the agent key (wrong custody secret?)")
	}
	k, err := signer.FromSeed(seed)
	if err != nil {
		return nil, err
	}
	if k.DID() != did {
		return nil, errors.New("jobs: unsealed key does not match the agent DID")
	}
	return k, nil
}

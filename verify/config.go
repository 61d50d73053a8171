package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Config is the trust configuration: who may sign what. Its file form is
// the reference CLI's: {"config_version":"1","allowlists":{...}}.
type Config struct {
	GatewayReceiptSigners         []string `json:"gateway_receipt_signer_dids,omitempty"`
	WebReceiptSigners             []string `json:"web_receipt_signer_dids,omitempty"`
	AttestationSigners            []string `json:"attestation_signer_dids,omitempty"`
	ExecutionAttestationSigners   []string `json:"execution_attestation_signer_dids,omitempty"`
	DerivationAttestationSigners  []string `json:"derivation_attestation_signer_dids,omitempty"`
	AuditResultAttestationSigners []string `json:"audit_result_attestation_signer_dids,omitempty"`

	// AgentSigners, when set, pins who may sign proof bundles (standalone,
	// inside an export, or aggregate members): the agent DIDs trusted.
	// clawea's own list, not the reference's.
	AgentSigners []string `json:"agent_signer_dids,omitempty"`
	// AggregateSigners, when set, pins who may sign aggregate bundles: the
	// job service DID(s). clawea's own list.
	AggregateSigners []string `json:"aggregate_signer_dids,omitempty"`
}

type configFile struct {
	ConfigVersion string `json:"config_version"`
	Allowlists    Config `json:"allowlists"`
}

// envAllowlists maps the reference's environment variables (comma lists)
// to the lists they extend.
var envAllowlists = []struct {
	name string
	list func(*Config) *[]string
}{
	{"GATEWAY_RECEIPT_SIGNER_DIDS", func(c *Config) *[]string { return &c.GatewayReceiptSigners }},
	{"WEB_RECEIPT_SIGNER_DIDS", func(c *Config) *[]string { return &c.WebReceiptSigners }},
	{"ATTESTATION_SIGNER_DIDS", func(c *Config) *[]string { return &c.AttestationSigners }},
	{"EXECUTION_ATTESTATION_SIGNER_DIDS", func(c *Config) *[]string { return &c.ExecutionAttestationSigners }},
	{"DERIVATION_ATTESTATION_SIGNER_DIDS", func(c *Config) *[]string { return &c.DerivationAttestationSigners }},
	{"AUDIT_RESULT_ATTESTATION_SIGNER_DIDS", func(c *Config) *[]string { return &c.AuditResultAttestationSigners }},
	{"AGENT_SIGNER_DIDS", func(c *Config) *[]string { return &c.AgentSigners }},
	{"AGGREGATE_SIGNER_DIDS", func(c *Config) *[]string { return &c.AggregateSigners }},
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("verify: invalid config")

// ParseConfig reads the config file format. Unknown keys are refused so a
// misspelt allowlist cannot silently leave a list empty.
func ParseConfig(data []byte) (Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var f configFile
	if err := dec.Decode(&f); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if f.ConfigVersion != "1" {
		return Config{}, fmt.Errorf("%w: config_version must be \"1\"", ErrConfig)
	}
	for _, l := range envAllowlists {
		for _, did := range *l.list(&f.Allowlists) {
			if !strings.HasPrefix(did, "did:") {
				return Config{}, fmt.Errorf("%w: %q in %s is not a DID", ErrConfig, did, l.name)
			}
		}
	}
	return f.Allowlists, nil
}

// LoadConfig reads a config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return ParseConfig(data)
}

// WithEnv returns c extended by the comma-separated environment variables
// the reference reads (GATEWAY_RECEIPT_SIGNER_DIDS and so on).
func (c Config) WithEnv(getenv func(string) string) Config {
	for _, l := range envAllowlists {
		v := getenv(l.name)
		if v == "" {
			continue
		}
		list := l.list(&c)
		*list = slices.Clone(*list)
		for _, did := range strings.Split(v, ",") {
			if did = strings.TrimSpace(did); did != "" && !slices.Contains(*list, did) {
				*list = append(*list, did)
			}
		}
	}
	return c
}

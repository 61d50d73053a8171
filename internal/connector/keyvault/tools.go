package keyvault

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/httpapi"
	redactreg "github.com/clawea/clawea/internal/redact"
)

// The Key Vault tools (docs/tool-gateway.md): action keyvault:secrets.*
// on kv://<vault>/secrets/<path>, context keys KeyVault:* (docs/policy.md).

// CodeUnknownVault refuses a vault that is not configured (HTTP 404).
const CodeUnknownVault = "UNKNOWN_VAULT"

// Tools is the Key Vault connector: the configured vaults, known by their
// canonical names.
type Tools struct {
	vaults map[string]Client
}

// NewTools returns the connector over the clients. Two spellings of one
// vault name are one vault, so configuring both is an error.
func NewTools(clients []Client) (*Tools, error) {
	m, err := connector.Index(clients, Client.Vault, CanonicalVault, "vault")
	if err != nil {
		return nil, err
	}
	return &Tools{vaults: m}, nil
}

// Names are the configured vaults' canonical names, sorted.
func (k *Tools) Names() []string { return slices.Sorted(maps.Keys(k.vaults)) }

// vaultName canonicalises the "vault" argument and, unless path is set,
// finds the vault; with path set the "name" argument is canonicalised
// first, so that every malformed name is INVALID_ARGUMENTS whether or not
// the vault exists.
func (k *Tools) vaultName(a *connector.Args, path *string) (Client, string) {
	name := a.Canon("vault", true, 64, "a vault name: 3-24 letters, digits and '-', starting with a letter", CanonicalVault)
	if path != nil {
		*path = a.Canon("name", true, 400, "a secret path: segments of letters, digits and '-' separated by '/'", CanonicalSecretPath)
	}
	if a.Err() != nil {
		return nil, ""
	}
	v := k.vaults[name]
	if v == nil {
		// A client whose Vault() is not in canonical form (a test double)
		// is still found under its canonical name.
		for n, c := range k.vaults {
			if cn, err := CanonicalVault(n); err == nil && cn == name {
				v = c
				break
			}
		}
	}
	if v == nil {
		a.Fail(httpapi.Errorf(http.StatusNotFound, CodeUnknownVault, "no vault %q is configured here (configured: %s)", name, strings.Join(k.Names(), ", ")))
		return nil, ""
	}
	return v, name
}

// secretVersion canonicalises the optional "version" argument: up to 64
// letters and digits, in lower case (Key Vault version ids are hex and
// compared without regard to case).
func secretVersion(a *connector.Args) string {
	return a.Canon("version", false, 64, "a version id: letters and digits", func(s string) (string, error) {
		for i := 0; i < len(s); i++ {
			if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return "", connector.ErrNotCanonical
			}
		}
		return strings.ToLower(s), nil
	})
}

func secretInfo(vault string, s Secret) map[string]any {
	out := map[string]any{"vault": vault, "name": s.Path, "version": s.Version, "enabled": s.Enabled}
	if s.ContentType != "" {
		out["content_type"] = s.ContentType
	}
	if !s.Updated.IsZero() {
		out["updated"] = s.Updated.UTC().Format(time.RFC3339)
	}
	return out
}

func infos(list []Info, withVersion bool) []any {
	out := make([]any, 0, len(list))
	for _, i := range list {
		m := map[string]any{"name": i.Path, "enabled": i.Enabled}
		if withVersion {
			m["version"] = i.Version
		}
		if !i.Updated.IsZero() {
			m["updated"] = i.Updated.UTC().Format(time.RFC3339)
		}
		out = append(out, m)
	}
	return out
}

var (
	pVault   = connector.Param{Name: "vault", Type: "string", Desc: "vault name as configured (kv://<vault>/...); case-insensitive", Required: true}
	pSecret  = connector.Param{Name: "name", Type: "string", Desc: "secret path: segments of letters, digits and '-' separated by '/' (agent/app/db-password); case-insensitive", Required: true}
	pVersion = connector.Param{Name: "version", Type: "string", Desc: "a version id (default: the latest)"}
)

// pRestoreVersion is keyvault_restore_secret_version's version: required.
var pRestoreVersion = connector.Param{Name: "version", Type: "string", Desc: "the id of the prior version whose value becomes current (keyvault_list_versions lists them)", Required: true}

// ActionRestore is the policy action of keyvault_restore_secret_version: a
// write, which a policy can gate on approval (docs/policy.md).
const ActionRestore = "keyvault:secrets.restore"

// restoreRun reads the named version and writes its value and content type
// as a new version, through the same Client calls as get and set (on the
// azsecrets client: GetSecret with the version, then SetSecret). The value
// stays in the gateway: it is registered for redaction under the secret's
// label and the answer holds version ids only, both disclosed in the
// receipt. A version that is not enabled is refused: Key Vault does not
// serve its value.
func restoreRun(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
	version := secretVersion(a)
	if version == "" && a.Err() == nil {
		a.Fail(connector.BadArg("version: required: the id of the prior version to restore"))
	}
	return func(ctx context.Context) (any, error) {
		old, err := v.Get(ctx, path, version)
		if err != nil {
			return nil, err
		}
		c.SecretOut = old.Value
		s, err := v.Set(ctx, path, old.Value, old.ContentType)
		if err != nil {
			return nil, err
		}
		c.Disclose = []string{"version", "restored_from_version"}
		out := secretInfo(vault, s)
		out["restored_from_version"] = old.Version
		return out, nil
	}
}

// runFunc builds a secret tool's run once its vault and path are known;
// it may read more arguments (a refusal is kept in a).
type runFunc func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error)

// secretTool builds a Key Vault tool over one secret.
func (k *Tools) secretTool(name, desc, action string, mutating bool, extra []connector.Param, run runFunc) *connector.Tool {
	t := &connector.Tool{Name: name, Description: desc, Action: action, Mutating: mutating, Params: append([]connector.Param{pVault, pSecret}, extra...)}
	t.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		var path string
		v, vault := k.vaultName(a, &path)
		if a.Err() != nil {
			return nil, a.Err()
		}
		c := &connector.Call{Resource: "kv://" + vault + "/secrets/" + path, Label: vault + "/" + path,
			Context: map[string]string{"KeyVault:Vault": vault, "KeyVault:SecretName": path}}
		if ver := secretVersion(a); ver != "" {
			c.Context["KeyVault:SecretVersion"] = ver
		}
		if a.Err() != nil {
			return nil, a.Err()
		}
		c.Run = run(c, v, vault, path, a)
		return c, a.Err()
	}
	return t
}

// Tools lists the Key Vault tools, none when no vault is configured.
func (k *Tools) Tools() []*connector.Tool {
	if len(k.vaults) == 0 {
		return nil
	}
	getRun := func(reveal bool) runFunc {
		return func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
			version := secretVersion(a)
			c.Reveal = reveal
			return func(ctx context.Context) (any, error) {
				s, err := v.Get(ctx, path, version)
				if err != nil {
					return nil, err
				}
				c.SecretOut = s.Value
				c.Disclose = []string{"version"}
				out := secretInfo(vault, s)
				if reveal {
					out["value"] = s.Value
				} else {
					out["value"] = redactreg.Marker(vault + "/" + path)
				}
				return out, nil
			}
		}
	}
	tools := []*connector.Tool{
		k.secretTool("keyvault_get_secret", "Read a secret. The value is used by the gateway and comes back redacted as [REDACTED:<vault>/<name>]; it is also redacted from everything the job sees later.",
			"keyvault:secrets.get", false, []connector.Param{pVersion}, getRun(false)),
		k.secretTool("keyvault_reveal_secret", "Read a secret and return its value in clear, where the job's policy allows keyvault:secrets.reveal. Later outputs still redact it.",
			"keyvault:secrets.reveal", false, []connector.Param{pVersion}, getRun(true)),
		k.secretTool("keyvault_set_secret", "Write a new version of a secret.", "keyvault:secrets.set", true,
			[]connector.Param{{Name: "value", Type: "string", Desc: "the secret value (at most 25 KiB)", Required: true, Secret: true},
				{Name: "content_type", Type: "string", Desc: "optional content type"}},
			func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
				value := a.Str("value", true, 25<<10)
				ct := a.Str("content_type", false, 255)
				c.Context["KeyVault:ValueBytes"] = strconv.Itoa(len(value))
				c.Context["KeyVault:ContentType"] = ct
				c.SecretOut = value
				return func(ctx context.Context) (any, error) {
					s, err := v.Set(ctx, path, value, ct)
					if err != nil {
						return nil, err
					}
					c.Disclose = []string{"version"}
					return secretInfo(vault, s), nil
				}
			}),
		k.secretTool("keyvault_restore_secret_version", "Make a prior version of a secret its current value again: the gateway reads that version and writes its value as a new version. The value never comes back; the answer names the version restored from and the new version.",
			ActionRestore, true, []connector.Param{pRestoreVersion}, restoreRun),
		k.secretTool("keyvault_delete_secret", "Delete a secret (soft delete: it can be recovered until purged).", "keyvault:secrets.delete", true, nil,
			func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					d, err := v.Delete(ctx, path)
					if err != nil {
						return nil, err
					}
					out := map[string]any{"vault": vault, "name": d.Path, "deleted": true}
					if !d.ScheduledPurgeDate.IsZero() {
						out["scheduled_purge"] = d.ScheduledPurgeDate.UTC().Format(time.RFC3339)
					}
					return out, nil
				}
			}),
		k.secretTool("keyvault_recover_secret", "Recover a soft-deleted secret.", "keyvault:secrets.recover", true, nil,
			func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					i, err := v.Recover(ctx, path)
					if err != nil {
						return nil, err
					}
					out := map[string]any{"vault": vault, "name": i.Path, "recovered": true}
					if i.Version != "" {
						out["version"] = i.Version
						c.Disclose = []string{"version"}
					}
					return out, nil
				}
			}),
		k.secretTool("keyvault_purge_secret", "Purge a soft-deleted secret for good.", "keyvault:secrets.purge", true, nil,
			func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					if err := v.Purge(ctx, path); err != nil {
						return nil, err
					}
					return map[string]any{"vault": vault, "name": path, "purged": true}, nil
				}
			}),
		k.secretTool("keyvault_list_versions", "List a secret's versions (no values).", "keyvault:secrets.list_versions", false, nil,
			func(c *connector.Call, v Client, vault, path string, a *connector.Args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					list, err := v.ListVersions(ctx, path)
					if err != nil {
						return nil, err
					}
					return map[string]any{"vault": vault, "name": path, "versions": infos(list, true)}, nil
				}
			}),
	}
	list := &connector.Tool{Name: "keyvault_list_secrets", Description: "List secret names (no values).", Action: "keyvault:secrets.list", Params: []connector.Param{pVault}}
	list.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		v, vault := k.vaultName(a, nil)
		if a.Err() != nil {
			return nil, a.Err()
		}
		return &connector.Call{Resource: "kv://" + vault + "/secrets", Context: map[string]string{"KeyVault:Vault": vault},
			Run: func(ctx context.Context) (any, error) {
				names, err := v.ListNames(ctx)
				if err != nil {
					return nil, err
				}
				return map[string]any{"vault": vault, "secrets": infos(names, false)}, nil
			}}, nil
	}
	return append(tools, list)
}

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/verify"
)

type verifyFlags struct {
	config   string
	strict   bool
	json     bool
	kind     string
	at       string
	urm      string
	beside   string
	maxBytes int64
}

func newVerifyCmd(e *env) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [flags] FILE",
		Short: "Verify a proof bundle, receipt, export or aggregate bundle offline",
		Long: `Verify a Clawsig artifact offline, with the reference verifier's checks in the
reference's order and its reason codes.

The kind is detected from the document: proof_bundle, gateway_receipt,
web_receipt, tool_receipt, export_bundle, aggregate_bundle,
log_inclusion_proof or commit_sig (an m1 signature). Use --kind to force it.
FILE may be - for standard input.

Trust comes from --config, a file of the form
  {"config_version":"1","allowlists":{"gateway_receipt_signer_dids":[...],
   "web_receipt_signer_dids":[...], "derivation_attestation_signer_dids":[...], ...}}
extended by the environment variables GATEWAY_RECEIPT_SIGNER_DIDS,
WEB_RECEIPT_SIGNER_DIDS, DERIVATION_ATTESTATION_SIGNER_DIDS and so on
(comma-separated). Bound gateway receipts need a gateway allowlist.

The trust config may also pin who signs: "agent_signer_dids" (proof bundles,
also inside exports and aggregates) and "aggregate_signer_dids" (the job
service); env AGENT_SIGNER_DIDS, AGGREGATE_SIGNER_DIDS. A signer outside a
set pin fails with SIGNER_NOT_PINNED.

--strict is stricter than the reference on purpose (docs/verify.md): unsigned
payloads never pass, every gateway receipt must verify and be bound, only
SHA-256 is accepted, evidence clawea cannot check is refused, every
llm_call/tool_call event needs its receipt and every receipt its event, and
an aggregate must hold its job's whole segment sequence. A strict PASS
without signer pins says so in its warnings.

Inputs larger than --max-bytes (default 64 MiB) are refused before they are
read (INPUT_TOO_LARGE, exit 2). A document with a key written twice in any
object fails with DUPLICATE_JSON_KEY.

A bundle that references a URM document is checked against --urm FILE, or
against <name>-urm.json next to <name>-bundle.json when that file exists.

Output: a readable verdict, or with --json one JSON object with status
(PASS, FAIL or ERROR), reason_code, reason and the verification details.
Exit codes: 0 PASS, 1 FAIL, 2 ERROR or usage.`,
		Example: `  clawea verify bundle.json --config trust.json
  clawea verify --strict --json bundle.json
  clawea verify --at 2026-02-17T22:38:41Z --kind aggregate_bundle agg.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "trust config file with signer allowlists")
	fl.BoolVar(&f.strict, "strict", false, "apply clawea's stricter rules")
	fl.BoolVar(&f.json, "json", false, "print one JSON object")
	fl.StringVar(&f.kind, "kind", "", "artifact kind (default: detected)")
	fl.StringVar(&f.at, "at", "", "verification time for expiry checks, RFC 3339 (default: now)")
	fl.StringVar(&f.urm, "urm", "", "URM document the bundle references")
	fl.StringVar(&f.beside, "unanchored", "", "the records that travel beside a proof bundle (a JSON array; default <name>-unanchored.json next to <name>-bundle.json)")
	fl.Int64Var(&f.maxBytes, "max-bytes", verify.DefaultMaxBytes, "refuse inputs larger than this many bytes, unread (INPUT_TOO_LARGE)")
	cmd.AddCommand(newConformanceCmd(e))
	return cmd
}

func loadTrust(path string) (verify.Config, error) {
	var cfg verify.Config
	if path != "" {
		var err error
		if cfg, err = verify.LoadConfig(path); err != nil {
			return cfg, err
		}
	}
	return cfg.WithEnv(os.Getenv), nil
}

func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is not an RFC 3339 time (e.g. 2026-02-17T22:38:41Z)", s)
	}
	return t, nil
}

// errTooLarge is an input over --max-bytes.
type errTooLarge struct{ msg string }

func (e *errTooLarge) Error() string { return e.msg }

func readInput(e *env, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(e.in, maxInput+1))
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxInput {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxInput>>20)
	}
	return os.ReadFile(path)
}

// maxInput bounds what the other commands read.
const maxInput = 512 << 20

// readVerifyInput reads verify's input, refusing one over max bytes before
// reading it (a file by its size, standard input after max+1 bytes).
func readVerifyInput(e *env, path string, max int64) ([]byte, error) {
	opt := verify.Options{MaxBytes: max}
	if path == "-" {
		r := e.in
		if max > 0 {
			r = io.LimitReader(e.in, max+1)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		if _, over := verify.TooLarge(int64(len(data)), opt); over {
			return nil, &errTooLarge{"standard input holds more than " + strconv.FormatInt(max, 10) + " bytes, the limit (--max-bytes)"}
		}
		return data, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if msg, over := verify.TooLarge(st.Size(), opt); over {
		return nil, &errTooLarge{path + ": " + msg}
	}
	r := io.Reader(f)
	if max > 0 { // the file may grow meanwhile
		r = io.LimitReader(f, max+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if msg, over := verify.TooLarge(int64(len(data)), opt); over {
		return nil, &errTooLarge{path + ": " + msg}
	}
	return data, nil
}

func runVerify(e *env, f verifyFlags, path string) error {
	fail := func(err error) error {
		code := verify.InputInvalid
		var tl *errTooLarge
		if errors.As(err, &tl) {
			code = verify.InputTooLarge
			err = fmt.Errorf("%s: %w", code, err)
		}
		if f.json {
			out := &verify.Outcome{Status: verify.StatusError, ReasonCode: code, Reason: err.Error(), Input: path, Strict: f.strict, Hint: verify.Explain(code)}
			_ = printJSON(e.out, out)
			return silent(ExitUsage)
		}
		return withCode(ExitUsage, err)
	}
	kind, err := verify.ParseKind(f.kind)
	if err != nil {
		return fail(err)
	}
	cfg, err := loadTrust(f.config)
	if err != nil {
		return fail(err)
	}
	at, err := parseAt(f.at)
	if err != nil {
		return fail(err)
	}
	if f.maxBytes <= 0 {
		return fail(fmt.Errorf("--max-bytes must be positive"))
	}
	data, err := readVerifyInput(e, path, f.maxBytes)
	if err != nil {
		return fail(err)
	}
	// One verification holds the whole document until it is done, so
	// frequent collections find little to free; collect less often, as
	// a serving process does (GOGC in the environment still wins).
	server.TuneGC()
	opt := verify.Options{Config: cfg, Now: at, Strict: f.strict, MaxBytes: f.maxBytes}
	if f.urm != "" {
		if opt.URM, err = os.ReadFile(f.urm); err != nil {
			return fail(err)
		}
	} else if urm := siblingURM(path, data); urm != nil {
		opt.URM = urm
	}
	out := verify.Check(data, kind, opt)
	out.Input = path
	if out.Status == verify.StatusPass && (out.Kind == verify.KindProofBundle) {
		if err := checkBeside(out, path, data, f.beside); err != nil {
			return fail(err)
		}
	}
	if f.json {
		if err := printJSON(e.out, out); err != nil {
			return withCode(ExitUsage, err)
		}
	} else {
		printOutcome(e.out, out)
	}
	return silent(out.ExitCode())
}

// checkBeside checks the side-effect and approval records that travel
// beside a proof bundle (docs/formats.md) against the bundle's
// clawea_unanchored entry: from --unanchored FILE, or <x>-unanchored.json
// next to <x>-bundle.json. Records that do not match make the verdict FAIL;
// records the bundle declares but nobody supplied are a warning.
func checkBeside(out *verify.Outcome, path string, data []byte, file string) error {
	if file == "" && strings.HasSuffix(path, "-bundle.json") {
		if _, err := os.Stat(strings.TrimSuffix(path, "-bundle.json") + "-unanchored.json"); err == nil {
			file = strings.TrimSuffix(path, "-bundle.json") + "-unanchored.json"
		}
	}
	var records [][]byte
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("%s: the records beside a bundle are a JSON array: %w", file, err)
		}
		records = make([][]byte, 0, len(list))
		for _, r := range list {
			records = append(records, r)
		}
	}
	u, res := verify.CheckUnanchored(data, records)
	switch {
	case res != nil:
		out.Status, out.ReasonCode, out.Reason = verify.StatusFail, res.Code, res.Reason
	case u.Note != "":
		out.Warnings = append(out.Warnings, "UNANCHORED_UNCHECKED: "+u.Note+"; pass --unanchored FILE to check them")
	}
	return nil
}

// siblingURM loads <x>-urm.json beside <x>-bundle.json when the bundle
// references a URM, as the reference CLI does.
func siblingURM(path string, data []byte) []byte {
	var base string
	switch {
	case path == "-":
		return nil
	case strings.HasSuffix(path, "-bundle.json"):
		base = strings.TrimSuffix(path, "-bundle.json")
	case strings.HasSuffix(path, "-export.json"):
		base = strings.TrimSuffix(path, "-export.json")
	default:
		return nil
	}
	if _, err := canon.Parse(data); err != nil {
		return nil
	}
	urm, err := os.ReadFile(base + "-urm.json")
	if err != nil {
		return nil
	}
	return urm
}

func printOutcome(w io.Writer, o *verify.Outcome) {
	fmt.Fprintf(w, "%s  %s  %s\n", o.Status, o.Kind, o.ReasonCode)
	fmt.Fprintf(w, "  %s\n", o.Reason)
	if r := o.Verification; r != nil {
		line := func(label, v string) {
			if v != "" {
				fmt.Fprintf(w, "  %-22s %s\n", label, v)
			}
		}
		line("signer", r.SignerDID)
		if r.AgentDID != r.SignerDID {
			line("agent", r.AgentDID)
		}
		line("run", r.RunID)
		line("bundle", r.BundleID)
		if r.EventCount > 0 {
			line("event chain", fmt.Sprintf("%d events, root %s", r.EventCount, r.ChainRootHash))
		}
		if r.Receipts > 0 {
			line("gateway receipts", fmt.Sprintf("%d: %d signed, %d signed and bound", r.Receipts, r.ReceiptsSigned, r.ReceiptsVerified))
		}
		if r.FirstReceiptFailed != "" {
			line("first receipt failure", r.FirstReceiptFailed)
		}
		if r.ToolReceipts > 0 {
			line("tool receipts", fmt.Sprint(r.ToolReceipts))
		}
		if r.SideEffects+r.HumanApprovals > 0 {
			line("side effects/approvals", fmt.Sprintf("%d / %d", r.SideEffects, r.HumanApprovals))
		}
		line("proof tier", r.ProofTier)
		line("model identity tier", r.ModelIdentityTier)
		if r.Path != "" {
			line("at", r.Path)
		}
	}
	if o.Hint != "" && o.Status != verify.StatusPass {
		fmt.Fprintf(w, "  hint: %s\n", o.Hint)
	}
	for _, warn := range o.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if o.Strict {
		fmt.Fprintln(w, "  mode: strict")
	}
}

type conformanceFlags struct {
	root   string
	at     string
	config string
	json   bool
}

func newConformanceCmd(e *env) *cobra.Command {
	var f conformanceFlags
	cmd := &cobra.Command{
		Use:   "conformance [flags] MANIFEST",
		Short: "Run a Clawsig protocol conformance manifest",
		Long: `Run every vector of a conformance manifest (manifest.v1.json) and compare the
verdict and reason code with the expected ones, as the reference runner does.

Vector paths are relative to --root; by default the nearest ancestor of the
manifest's folder under which the vector files exist. The trust config
defaults to clawverify.config.conformance.v1.json beside the manifest.

Expiry is checked at the manifest's generated_at unless --at says otherwise:
several vectors carry an expires_at that has since passed, and with the
current clock they would rightly fail with EXPIRED_TTL.

Prints one line per vector (name, expected, got) and ends with
"N passed, M failed". Exit 1 if any vector failed.`,
		Example: `  clawea verify conformance --root ../shared/claw-protocol \
    ../shared/claw-protocol/packages/schema/fixtures/protocol-conformance/manifest.v1.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConformance(e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.root, "root", "", "folder the vector paths are relative to")
	fl.StringVar(&f.at, "at", "", "verification time, RFC 3339 (default: the manifest's generated_at)")
	fl.StringVar(&f.config, "config", "", "trust config (default: clawverify.config.conformance.v1.json beside the manifest)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object with every result")
	return cmd
}

func runConformance(e *env, f conformanceFlags, manifestPath string) error {
	m, err := verify.LoadManifest(manifestPath)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	root := f.root
	if root == "" {
		if root, err = findRoot(manifestPath, m); err != nil {
			return withCode(ExitUsage, err)
		}
	}
	cfgPath := f.config
	if cfgPath == "" {
		def := filepath.Join(filepath.Dir(manifestPath), "clawverify.config.conformance.v1.json")
		if _, err := os.Stat(def); err == nil {
			cfgPath = def
		}
	}
	cfg, err := loadTrust(cfgPath)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	at, err := parseAt(f.at)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if at.IsZero() {
		if at, err = m.ManifestTime(); err != nil {
			return withCode(ExitUsage, err)
		}
	}
	opt := verify.Options{Config: cfg, Now: at}
	var results []verify.VectorResult
	passed := 0
	if !f.json {
		fmt.Fprintf(e.out, "%s %s: %d vectors, verification time %s\n", m.Protocol.Name, m.Protocol.Version, len(m.Vectors), at.UTC().Format(time.RFC3339Nano))
	}
	for i := range m.Vectors {
		r := verify.RunVector(&m.Vectors[i], root, opt)
		results = append(results, r)
		if r.Passed {
			passed++
		}
		if !f.json {
			mark := "ok  "
			if !r.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(e.out, "%s %-58s expected %-28s got %s\n", mark, r.Name, r.Expected, r.Got)
			if !r.Passed && r.Detail != "" {
				fmt.Fprintf(e.out, "     %s\n", r.Detail)
			}
		}
	}
	failed := len(results) - passed
	if f.json {
		_ = printJSON(e.out, map[string]any{"manifest": manifestPath, "root": root, "verification_time": at.UTC().Format(time.RFC3339Nano),
			"passed": passed, "failed": failed, "results": results})
	} else {
		fmt.Fprintf(e.out, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return silent(ExitFail)
	}
	return nil
}

// findRoot walks up from the manifest's folder to the first folder under
// which the first vector's path exists.
func findRoot(manifestPath string, m *verify.Manifest) (string, error) {
	dir, err := filepath.Abs(filepath.Dir(manifestPath))
	if err != nil {
		return "", err
	}
	probe := filepath.FromSlash(m.Vectors[0].Path)
	for {
		if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the folder the vector paths are relative to; pass --root")
		}
		dir = parent
	}
}

// Package devvault is clawea's built-in development Key Vault: a small
// HTTPS server that speaks the subset of the Azure Key Vault secrets REST
// API that the official azsecrets client uses (set, get, soft delete,
// get deleted, recover, purge, and the three paged listings).
//
// It exists for the demo (`clawea devvault`) and for tests that drive the
// real azsecrets client, and the gateway's keyvault connector, over TLS
// without any Azure account. It is not a security boundary: it accepts a
// single static bearer token, keeps values in memory, and when asked to
// persist them writes them in plain JSON to a file readable only by its
// owner (mode 0600).
//
// Behaviour follows the real service where the SDK can observe it:
//   - a request without a bearer token gets 401 with the Key Vault
//     challenge (WWW-Authenticate: Bearer authorization="https://login.local/<tenant>",
//     resource="https://vault.local"); a wrong token gets 401 too;
//   - versions are random 32-hex ids, the latest version is the one set
//     last, attributes carry enabled/created/updated (unix seconds) and
//     recoveryLevel "Recoverable+Purgeable";
//   - names match [0-9a-zA-Z-]{1,127} and are case-insensitive;
//   - DELETE /secrets/{name} is a soft delete of all versions; while a name
//     is deleted, GET answers 404 SecretNotFound and PUT answers 409
//     Conflict, until it is recovered or purged;
//   - values are at most 25 KiB; the vault holds at most 25,000 versions.
//
// Clients must use azsecrets.ClientOptions{DisableChallengeResourceVerification: true}
// (the challenge resource is not a parent domain of 127.0.0.1) and a
// transport that trusts the server's self-signed certificate: see
// [Server.Client], [Server.CertPool] and [Server.Credential].
package devvault

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/clawea/clawea/internal/connector/keyvault"
)

// Limits shared with the real service where it has them.
const (
	// MaxValueBytes is the largest secret value accepted (25 KiB).
	MaxValueBytes = 25 * 1024
	// DefaultMaxSecrets bounds the number of stored secret versions,
	// deleted ones included.
	DefaultMaxSecrets = 25000
	// MaxPageSize is the largest page a listing returns (as the service).
	MaxPageSize = 25
	// RetentionDays is how long a deleted secret stays recoverable.
	RetentionDays = 90
	// RecoveryLevel is reported in every secret's attributes.
	RecoveryLevel = "Recoverable+Purgeable"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Vault is the vault's name as used in kv://<vault>/...; default
	// "kv-dev". It follows Azure's grammar (keyvault.CanonicalVault) and is
	// kept in lower case.
	Vault string
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// Token is the only bearer token accepted. Empty generates a random one
	// (see Server.Token).
	Token string
	// Tenant is the tenant segment of the challenge's authorization URL;
	// default "devvault".
	Tenant string
	// PersistPath, if set, is a JSON file that is loaded by New (when it
	// exists) and rewritten (mode 0600) after every change.
	PersistPath string
	// PageSize is the default number of entries per listing page
	// (1..MaxPageSize, default MaxPageSize). Tests set it low to exercise
	// nextLink.
	PageSize int
	// MaxSecrets bounds the stored secret versions; default DefaultMaxSecrets.
	MaxSecrets int
	// Logger receives request errors and server errors; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Faults make requests for some secret names fail (see Fault and
	// Server.SetFault), keyed by name or FaultAll.
	Faults map[string]Fault
}

// Server is a development Key Vault. Create it with New, then either Start
// it on a loopback port or mount Handler in a TLS server of your own.
type Server struct {
	vault       string
	token       string
	tenant      string
	persistPath string
	port        int
	pageSize    int
	maxSecrets  int
	log         *slog.Logger
	now         func() time.Time

	cert    tls.Certificate
	certPEM []byte
	pool    *x509.CertPool
	client  *http.Client

	mu       sync.Mutex // guards the store below
	secrets  map[string]*secret
	versions int // stored versions, deleted included

	faultMu   sync.Mutex // guards faults and faultHits
	faults    map[string]Fault
	faultHits map[string]int
	stop      chan struct{} // closed by Close: hung requests give up

	lifeMu  sync.Mutex // guards the fields below
	srv     *http.Server
	done    chan struct{}
	url     string
	started bool
	closed  bool
}

// New checks the options, loads PersistPath if it exists, and generates the
// server's TLS certificate. It does not listen; call Start for that.
func New(opts Options) (*Server, error) {
	s := &Server{
		vault:       opts.Vault,
		token:       opts.Token,
		tenant:      opts.Tenant,
		persistPath: opts.PersistPath,
		pageSize:    opts.PageSize,
		maxSecrets:  opts.MaxSecrets,
		log:         opts.Logger,
		now:         opts.Now,
		secrets:     map[string]*secret{},
		stop:        make(chan struct{}),
	}
	for name, f := range opts.Faults {
		if err := s.SetFault(name, f); err != nil {
			return nil, err
		}
	}
	if s.vault == "" {
		s.vault = "kv-dev"
	}
	vault, err := keyvault.CanonicalVault(s.vault)
	if err != nil {
		return nil, fmt.Errorf("devvault: invalid vault name %q (want 3-24 letters, digits and '-', starting with a letter, as Azure)", s.vault)
	}
	s.vault = vault // lower case, as kv://<vault>/... names it
	if s.tenant == "" {
		s.tenant = "devvault"
	}
	if !validName(s.tenant) {
		return nil, fmt.Errorf("devvault: invalid tenant %q (want letters, digits and '-')", s.tenant)
	}
	if s.token == "" {
		var b [32]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		s.token = base64.RawURLEncoding.EncodeToString(b[:])
	}
	for i := 0; i < len(s.token); i++ {
		if c := s.token[i]; c <= ' ' || c >= 0x7f {
			return nil, errors.New("devvault: token must be printable ASCII without spaces")
		}
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("devvault: invalid port %d", opts.Port)
	}
	switch {
	case s.pageSize == 0:
		s.pageSize = MaxPageSize
	case s.pageSize < 0 || s.pageSize > MaxPageSize:
		return nil, fmt.Errorf("devvault: page size %d out of range 1..%d", s.pageSize, MaxPageSize)
	}
	switch {
	case s.maxSecrets == 0:
		s.maxSecrets = DefaultMaxSecrets
	case s.maxSecrets < 0:
		return nil, fmt.Errorf("devvault: negative MaxSecrets %d", s.maxSecrets)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	cert, certPEM, err := newCertificate(time.Now())
	if err != nil {
		return nil, fmt.Errorf("devvault: generating TLS certificate: %w", err)
	}
	s.cert, s.certPEM = cert, certPEM
	s.pool = x509.NewCertPool()
	s.pool.AddCert(cert.Leaf)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // always direct to the loopback server
	tr.TLSClientConfig = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
	s.client = &http.Client{Transport: tr, Timeout: time.Minute}
	s.port = opts.Port
	return s, nil
}

// Start listens on 127.0.0.1 (Options.Port, or a free port) and serves
// HTTPS until Close. It returns the vault URL, e.g. https://127.0.0.1:8443.
func (s *Server) Start() (string, error) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return "", errors.New("devvault: server is closed")
	}
	if s.started {
		return "", errors.New("devvault: server already started")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)))
	if err != nil {
		return "", fmt.Errorf("devvault: listen: %w", err)
	}
	// HTTP/1.1 only: an HTTP/2 graceful shutdown can stall Close for a
	// second on a client's half-finished stream, and the SDK needs no h2.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	s.srv = &http.Server{
		Protocols:         protocols,
		Handler:           s.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	s.url = "https://" + ln.Addr().String()
	s.started = true
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("devvault: serve", "err", err)
		}
	}(s.srv, s.done)
	return s.url, nil
}

// URL is the vault URL after Start, or "" before.
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.url
}

// Close stops the server (waiting up to 5 s for requests in flight) and
// releases the client's idle connections. It is safe to call more than once.
func (s *Server) Close() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
		cancel()
		<-s.done
	}
	s.client.CloseIdleConnections()
	return err
}

// Handler serves the Key Vault API; it can be mounted in any TLS server
// (for example httptest.NewUnstartedServer with the certificate from
// TLSCertificate). Start uses it.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// TLSCertificate is the server's self-signed certificate and key
// (ECDSA P-256, valid for 127.0.0.1, ::1 and localhost).
func (s *Server) TLSCertificate() tls.Certificate { return s.cert }

// CertPEM is the server certificate in PEM, for clients in other processes
// to trust (it is its own CA).
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.certPEM...) }

// CertPool holds the server certificate, for a tls.Config's RootCAs.
func (s *Server) CertPool() *x509.CertPool { return s.pool.Clone() }

// Client is an HTTP client that trusts the server certificate; it can be
// used directly as azcore.ClientOptions.Transport.
func (s *Server) Client() *http.Client { return s.client }

// Token is the bearer token the server accepts.
func (s *Server) Token() string { return s.token }

// Vault is the vault's name (Options.Vault, default "kv-dev").
func (s *Server) Vault() string { return s.vault }

// Credential is a static azcore.TokenCredential returning Token.
func (s *Server) Credential() azcore.TokenCredential { return staticCredential{token: s.token} }

type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}

// Put stores a new version of a secret directly (for seeding the demo) and
// returns its version id. It fails like SetSecret would: on a bad name, a
// value over MaxValueBytes, a deleted-but-not-purged name, a full vault, or
// a persistence error.
func (s *Server) Put(name, value, contentType string) (version string, err error) {
	p := setParams{Value: &value}
	if contentType != "" {
		p.ContentType = &contentType
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, aerr := s.setLocked(name, p)
	if aerr != nil {
		return "", aerr
	}
	return v.ID, nil
}

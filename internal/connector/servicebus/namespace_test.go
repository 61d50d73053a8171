package servicebus

import (
	"strings"
	"testing"
)

func TestEndpointHost(t *testing.T) {
	ok := map[string]string{
		"Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s":                   "contoso.servicebus.windows.net",
		"SharedAccessKeyName=k;endpoint = sb://Contoso.ServiceBus.Windows.Net;SharedAccessKey=s=":                 "contoso.servicebus.windows.net",
		"Endpoint=sb://127.0.0.1:5673;SharedAccessKeyName=x;SharedAccessKey=dGVzdA==;UseDevelopmentEmulator=true": "127.0.0.1:5673",
		"Endpoint=sb://[::1]:5672/;SharedAccessKey=x":                                                             "[::1]:5672",
	}
	for in, want := range ok {
		got, err := endpointHost(in)
		if err != nil || got != want {
			t.Errorf("endpointHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "SharedAccessKey=secret", "Endpoint=", "Endpoint=sb://", "Endpoint=::::",
		"Endpoint=sb://a;Endpoint=sb://b", "Endpoint=sb://user:secret@host/",
		"Endpoint=sb://ho st/", "Endpoint=sb://host:port/",
	}
	for _, in := range bad {
		got, err := endpointHost(in + ";SharedAccessKey=TOPSECRET")
		if err == nil {
			t.Errorf("endpointHost(%q) = %q, want an error", in, got)
			continue
		}
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("endpointHost error quotes the secret: %v", err)
		}
	}
}

func TestFullyQualified(t *testing.T) {
	ok := map[string]string{
		"contoso":                                 "contoso.servicebus.windows.net",
		"Contoso.servicebus.windows.net":          "contoso.servicebus.windows.net",
		"sb://contoso.servicebus.windows.net/":    "contoso.servicebus.windows.net",
		"contoso.servicebus.chinacloudapi.cn":     "contoso.servicebus.chinacloudapi.cn",
		"localhost:5672":                          "localhost:5672",
		" amqps://contoso.servicebus.windows.net": "contoso.servicebus.windows.net",
	}
	for in, want := range ok {
		got, err := fullyQualified(in)
		if err != nil || got != want {
			t.Errorf("fullyQualified(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "  ", "sb://", "sb://host/path", "a b", "host:x", "https://u:p@host/", "sb://host/?q"} {
		if got, err := fullyQualified(in); err == nil {
			t.Errorf("fullyQualified(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzEndpointHost checks that connection string parsing never panics, never
// echoes a key in its errors, and returns hosts checkHost accepts.
func FuzzEndpointHost(f *testing.F) {
	for _, s := range []string{
		"Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s",
		"Endpoint=sb://127.0.0.1:5673;UseDevelopmentEmulator=true",
		"Endpoint=sb://[::1]:1/", "Endpoint=%zz", "Endpoint=sb://a@b/", ";;=;", "endpoint=sb://x:99999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const secret = "Zm9vYmFyc2VjcmV0"
		host, err := endpointHost(s + ";SharedAccessKey=" + secret)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		if again, err := checkHost(host); err != nil || again != host {
			t.Fatalf("endpointHost(%q) = %q, which checkHost gives %q, %v", s, host, again, err)
		}
		if !sameNamespace(host, host) {
			t.Fatalf("sameNamespace(%q, itself) is false", host)
		}
		if ns, err := fullyQualified(host); strings.ContainsAny(host, ".:") && (err != nil || ns != host) {
			t.Fatalf("fullyQualified(%q) = %q, %v", host, ns, err)
		}
	})
}

func TestNamespaceLevelSAS(t *testing.T) {
	for cs, want := range map[string]bool{
		"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=aw==":                  true,
		"Endpoint=sb://x.servicebus.windows.net/;sharedaccesskeyname=send;SharedAccessKey=aw==":                                       true,
		"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=aw==;EntityPath=orders":                     false,
		"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=aw==;EntityPath=":                           true,
		"Endpoint=sb://x.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=k":                   true,
		"Endpoint=sb://x.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1&skn=k;EntityPath=orders": false,
		"Endpoint=sb://x.servicebus.windows.net/": false,
	} {
		if got, _ := NamespaceLevelSAS(cs); got != want {
			t.Errorf("%s: %v", cs, got)
		}
	}
	if _, key := NamespaceLevelSAS("Endpoint=sb://x/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=aw=="); key != "RootManageSharedAccessKey" {
		t.Errorf("key name %q", key)
	}
}

// FuzzNamespaceLevelSAS: any connection string (configuration, which may
// come from an untrusted environment) is classified without panicking; a
// key name is never longer than 256 bytes and never holds the key; a
// string with an EntityPath is never namespace-level.
func FuzzNamespaceLevelSAS(f *testing.F) {
	f.Add("Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v")
	f.Add("Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=q")
	f.Add(";;==;SharedAccessSignature=;")
	f.Fuzz(func(t *testing.T, cs string) {
		wide, key := NamespaceLevelSAS(cs)
		if len(key) > 256 {
			t.Fatalf("key name of %d bytes", len(key))
		}
		if wide && strings.Contains(strings.ToLower(cs), ";entitypath=q;") {
			t.Fatalf("namespace-level with an EntityPath: %q", cs)
		}
	})
}

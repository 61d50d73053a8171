package servicebus

import (
	"fmt"
	"net/url"
	"strings"
)

// defaultDomain completes a bare namespace name ("contoso") to its fully
// qualified form in the public Azure cloud.
const defaultDomain = ".servicebus.windows.net"

// endpointHost returns the host (with port, if any) of a connection string's
// Endpoint ("Endpoint=sb://contoso.servicebus.windows.net/;..."). Errors
// never quote the connection string, which holds a secret.
func endpointHost(connectionString string) (string, error) {
	var endpoint string
	found := false
	for _, part := range strings.Split(connectionString, ";") {
		key, value, ok := strings.Cut(part, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "Endpoint") {
			continue
		}
		if found {
			return "", fmt.Errorf("servicebus: connection string has more than one Endpoint")
		}
		endpoint, found = strings.TrimSpace(value), true
	}
	if !found || endpoint == "" {
		return "", fmt.Errorf("servicebus: connection string has no Endpoint=sb://<namespace>/")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("servicebus: connection string Endpoint is not a URL like sb://<namespace>/")
	}
	if u.User != nil {
		return "", fmt.Errorf("servicebus: connection string Endpoint must not contain user information")
	}
	return checkHost(u.Host)
}

// fullyQualified normalises the namespace argument of NewAzure: it accepts
// "contoso", "contoso.servicebus.windows.net", "sb://contoso.servicebus.windows.net/"
// and host:port forms.
func fullyQualified(namespace string) (string, error) {
	ns := strings.TrimSpace(namespace)
	if ns == "" {
		return "", fmt.Errorf("servicebus: namespace is empty")
	}
	if strings.Contains(ns, "://") {
		u, err := url.Parse(ns)
		if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("servicebus: namespace %q is not a host name or sb://<host>/ URL", namespace)
		}
		ns = u.Host
	}
	if !strings.ContainsAny(ns, ".:") {
		ns += defaultDomain
	}
	return checkHost(ns)
}

// checkHost accepts DNS names, IPv4 addresses and bracketed IPv6 addresses,
// each with an optional port.
func checkHost(host string) (string, error) {
	if host == "" || len(host) > 300 {
		return "", fmt.Errorf("servicebus: namespace host %q is empty or too long", host)
	}
	u, err := url.Parse("sb://" + host + "/")
	if err != nil || u.Host != host || u.Hostname() == "" {
		return "", fmt.Errorf("servicebus: namespace host %q is not a valid host[:port]", host)
	}
	if p := u.Port(); p != "" {
		for _, r := range p {
			if r < '0' || r > '9' {
				return "", fmt.Errorf("servicebus: namespace host %q has a bad port", host)
			}
		}
	}
	for _, r := range u.Hostname() {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':' || r == '_'
		if !ok {
			return "", fmt.Errorf("servicebus: namespace host %q contains %q", host, r)
		}
	}
	return strings.ToLower(host), nil
}

// sameNamespace reports whether the namespace argument of NewAzure names
// the host fqdn, either as given or completed with the default domain.
func sameNamespace(namespace, fqdn string) bool {
	if h, err := fullyQualified(namespace); err == nil && h == fqdn {
		return true
	}
	h, err := checkHost(strings.TrimSpace(namespace))
	return err == nil && h == fqdn
}

// NamespaceLevelSAS reports whether a connection string authenticates with
// a shared access key or signature scoped to the whole namespace: it has a
// SharedAccessKeyName or SharedAccessSignature and no EntityPath. Such a
// key (RootManageSharedAccessKey, typically) reaches every entity, and
// with Manage rights can change them, so clawea refuses it unless the
// configuration allows it for that namespace, and flags it either way.
// keyName is the key's name (never its value), "" for a signature.
// A string with neither key nor signature (AAD) is not a SAS: false.
func NamespaceLevelSAS(connectionString string) (namespaceLevel bool, keyName string) {
	sas, entity := false, false
	for _, part := range strings.Split(connectionString, ";") {
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "sharedaccesskeyname":
			sas, keyName = true, strings.TrimSpace(value)
		case "sharedaccesssignature":
			sas = true
		case "entitypath":
			if strings.TrimSpace(value) != "" {
				entity = true
			}
		}
	}
	if len(keyName) > 256 {
		keyName = keyName[:256]
	}
	return sas && !entity, keyName
}

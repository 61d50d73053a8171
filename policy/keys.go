package policy

// KnownKeys are the context keys clawea's gateways set (docs/policy.md,
// "Context keys"). A condition key is matched against them without regard
// to case and compiled to the spelling listed here, so that a policy means
// the same thing whatever case its author typed: the request's context is
// looked up with that spelling, and References answers for it.
var KnownKeys = []string{
	"Agent:DID", "Job:ID", "Tool:Name", "Context:Hour",
	"Request:Bytes", "Request:Stream", "Request:ViaGateway", ApprovalKey,
	"Model:Name", "Model:Provider", "Namespace:Name", "SideEffect:TargetDomain",
	"KeyVault:Vault", "KeyVault:SecretName", "KeyVault:SecretVersion", "KeyVault:ContentType", "KeyVault:ValueBytes",
	"ServiceBus:Namespace", "ServiceBus:Entity", "ServiceBus:Subject", "ServiceBus:ContentType",
	"ServiceBus:MessageBytes", "ServiceBus:MessagesSentInJob", "ServiceBus:ReceiveMode",
	"ServiceBus:MessagesReceivedInJob", "ServiceBus:MessagesPeekedInJob", "ServiceBus:MessagesSentInMinute",
	"ServiceBus:MessagesReceivedInMinute", "ServiceBus:MessagesPeekedInMinute", "ServiceBus:MaxMessages",
	"Egress:CarriesSecret",
	// Runtime tools (the tool gateway's decision API).
	"Tool:Runtime", "Tool:Kind", "Runtime:AgentID", "Runtime:Sandboxed", "Runtime:Elevated",
	"Requester:Channel", "Requester:AccountID", "Requester:SenderID", "Requester:IsOwner",
	// What the agent's runtime claims about a call without proof (the
	// decision API's facts sent with a job token, which the agent holds).
	// A Deny may rely on a claim; an Allow should not (lint:
	// ALLOW_ON_UNPROVEN_CLAIM).
	ClaimPrefix + "Tool:Kind", ClaimPrefix + "Runtime:AgentID", ClaimPrefix + "Runtime:Sandboxed",
	ClaimPrefix + "Runtime:Elevated", ClaimPrefix + "Requester:Channel", ClaimPrefix + "Requester:AccountID",
	ClaimPrefix + "Requester:SenderID", ClaimPrefix + "Requester:IsOwner",
	// Proxied MCP tools (mcp:call on mcp://<server>/<tool>).
	"MCP:Server", "MCP:Tool",
	// Starting a job (job:start on job://<agent>) and issuing a job's write
	// token (token:issue on job://<agent>): the requested TTL in seconds,
	// the requested scopes (space-separated, sorted) and whether they
	// include the write scope. Job:Label.<name> (KnownKeyPrefixes) is set
	// there and on every later decision of the job.
	"Job:TTL", "Job:Scope", "Job:WriteScope",
}

// Job actions: the job service decides them on the job's pinned policy
// (docs/policy.md, "Jobs under policy").
const (
	ActionJobStart   = "job:start"
	ActionTokenIssue = "token:issue"
)

// JobResource is the resource of job:start and token:issue decisions.
func JobResource(agentDID string) string { return "job://" + agentDID }

// LabelKeyPrefix begins the context key of each job label.
const LabelKeyPrefix = "Job:Label."

// ClaimPrefix begins every key whose value the caller asserted and nobody
// proved (Claim:Runtime:Sandboxed is what the agent says;
// Runtime:Sandboxed is reserved for what a host proves).
const ClaimPrefix = "Claim:"

// IsClaimKey reports whether a condition key names an unproven claim
// (ASCII case ignored, as keys are compiled).
func IsClaimKey(key string) bool {
	return len(key) >= len(ClaimPrefix) && foldASCII(key[:len(ClaimPrefix)]) == foldASCII(ClaimPrefix)
}

// KnownKeyPrefixes are families of keys whose suffix is a name: the prefix
// is matched without regard to case, and the name is compiled in ASCII
// lower case (the gateway sets ServiceBus:AppProperty.<name> with the
// property's name in lower case, so a condition holds whatever case the
// sender used; names that differ only in case are refused).
var KnownKeyPrefixes = []string{"ServiceBus:AppProperty.", "MCP:Arg.", LabelKeyPrefix}

// CanonicalKey returns the spelling a condition key is compiled to, and
// whether it is a key the gateways set. Only ASCII letters are compared
// without regard to case (no Unicode folding: U+212A is not K).
func CanonicalKey(key string) (string, bool) {
	for _, k := range KnownKeys {
		if len(k) == len(key) && foldASCII(k) == foldASCII(key) {
			return k, true
		}
	}
	for _, p := range KnownKeyPrefixes {
		if len(key) > len(p) && foldASCII(key[:len(p)]) == foldASCII(p) {
			return p + foldASCII(key[len(p):]), true
		}
	}
	return key, false
}

package schemas

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riferrei/srclient"

	"github.com/cdcsync/cdcsync/processor/cdc"
)

// Registry is what the Avro decoder needs from a registry: writer schemas
// by ID and where each ID is registered.
type Registry interface {
	GetSchema(schemaID int) (*srclient.Schema, error)
	GetSubjectVersionsById(schemaID int) (srclient.SubjectVersionResponse, error)
}

// Registrar registers output schemas and finds their ID and version.
type Registrar interface {
	LookupSchema(subject string, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
	CreateSchema(subject string, schema string, schemaType srclient.SchemaType, references ...srclient.Reference) (*srclient.Schema, error)
}

// Subjects reads a subject's versions and compatibility level.
type Subjects interface {
	GetCompatibilityLevel(subject string, defaultToGlobal bool) (*srclient.CompatibilityLevel, error)
	GetSchemaVersions(subject string) ([]int, error)
	GetSchemaByVersion(subject string, version int) (*srclient.Schema, error)
}

var (
	_ Registry  = (*srclient.SchemaRegistryClient)(nil)
	_ Registrar = (*srclient.SchemaRegistryClient)(nil)
	_ Subjects  = (*srclient.SchemaRegistryClient)(nil)

	_ cdc.SchemaSource = (*Client)(nil)
)

// Errors returned by Client and Encoder, besides transient ones wrapping
// cdc.ErrRegistryUnavailable.
var (
	// ErrNotFound is returned when the registry does not know a subject,
	// version or schema (HTTP 404).
	ErrNotFound = errors.New("schemas: not found in the registry")
	// ErrAccessDenied is returned when the registry refuses the
	// credentials (HTTP 401) or the operation (HTTP 403). It is fatal to a
	// worker: retrying cannot help until the credentials or the
	// registry's permissions change.
	ErrAccessDenied = errors.New("schemas: the registry refused access")
	// ErrIncompatible is wrapped by *IncompatibleError: a schema the
	// subject's compatibility level refuses (or the registry answered
	// 409).
	ErrIncompatible = errors.New("schemas: incompatible schema")
	// ErrNotRegistered is returned by the Encoder when the output schema is
	// not registered under its subject and registration is disabled.
	ErrNotRegistered = errors.New("schemas: output schema not registered")
	// ErrInvalidSchema is returned when the registry rejects a schema as
	// invalid (HTTP 422).
	ErrInvalidSchema = errors.New("schemas: invalid schema")
)

// DefaultTimeout is the default per-request timeout of a Client.
const DefaultTimeout = 2 * time.Second

// ClientOptions configures a Client.
type ClientOptions struct {
	// Timeout bounds each registry request (default DefaultTimeout). A
	// request that times out is a transient failure.
	Timeout time.Duration
	// Username and Password set HTTP basic authentication, when both are
	// set.
	Username, Password string
	// BearerToken, when set, is sent as "Authorization: Bearer ...".
	BearerToken string
	// TLS configures https: the CA and a client certificate. Nil: Go's
	// defaults (the system roots).
	TLS *tls.Config
}

// maxCachedIDs bounds the schema-by-ID cache; IDs come from the data.
const maxCachedIDs = 4096

// Client is a schema registry client with caches: schema text by ID and
// subjects by ID. Only successful answers are cached, so a registry that
// was down is asked again. It is safe for concurrent use.
type Client struct {
	reg  Registry
	rar  Registrar
	subj Subjects
	url  string

	mu       sync.RWMutex
	byID     map[int]string
	subjByID map[int][]cdc.SubjectVersion
}

// NewClient returns a Client for the registry at url, over srclient with
// its own caches and codec creation off (the Client caches, and the
// decoder compiles schemas itself).
func NewClient(url string, o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	hc := &http.Client{Timeout: o.Timeout}
	if o.TLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = o.TLS
		hc.Transport = tr
	}
	sc := srclient.NewSchemaRegistryClient(strings.TrimRight(url, "/"), srclient.WithClient(hc))
	sc.CachingEnabled(false)
	sc.CodecCreationEnabled(false)
	if o.Username != "" && o.Password != "" {
		sc.SetCredentials(o.Username, o.Password)
	}
	if o.BearerToken != "" {
		sc.SetBearerToken(o.BearerToken)
	}
	c := NewClientFrom(sc, sc, sc)
	c.url = url
	return c
}

// NewClientFrom returns a Client over the given implementations, for
// tests and for callers that build their own srclient.
func NewClientFrom(reg Registry, rar Registrar, subj Subjects) *Client {
	return &Client{reg: reg, rar: rar, subj: subj, byID: map[int]string{}, subjByID: map[int][]cdc.SubjectVersion{}}
}

// URL is the registry URL the Client was made with, if any.
func (c *Client) URL() string { return c.url }

// WriterSchema returns the schema registered under id (cdc.SchemaSource).
// An unknown ID gives an error wrapping ErrNotFound and
// cdc.ErrUnknownSchema; an unreachable registry, one wrapping
// cdc.ErrRegistryUnavailable.
func (c *Client) WriterSchema(id int) (string, error) {
	c.mu.RLock()
	s, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return s, nil
	}
	sch, err := c.reg.GetSchema(id)
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("schema ID %d: %w (%w)", id, cdc.ErrUnknownSchema, err)
		}
		return "", err
	}
	if t := sch.SchemaType(); t != nil && *t != srclient.Avro && *t != "" {
		return "", fmt.Errorf("schema ID %d is %s, not Avro: %w", id, *t, cdc.ErrUnknownSchema)
	}
	text, err := c.dereference(sch.Schema(), sch.References(), 0)
	if err != nil {
		return "", fmt.Errorf("schema ID %d: %w", id, err)
	}
	c.mu.Lock()
	if len(c.byID) >= maxCachedIDs {
		clear(c.byID)
	}
	c.byID[id] = text
	c.mu.Unlock()
	return text, nil
}

// SubjectVersions lists where id is registered (cdc.SchemaSource). A
// registry that does not support the call gives none, not an error.
func (c *Client) SubjectVersions(id int) ([]cdc.SubjectVersion, error) {
	c.mu.RLock()
	s, ok := c.subjByID[id]
	c.mu.RUnlock()
	if ok {
		return s, nil
	}
	resp, err := c.reg.GetSubjectVersionsById(id)
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	out := make([]cdc.SubjectVersion, 0, len(resp))
	for _, sv := range resp {
		out = append(out, cdc.SubjectVersion{Subject: sv.Subject, Version: sv.Version})
	}
	c.mu.Lock()
	if len(c.subjByID) >= maxCachedIDs {
		clear(c.subjByID)
	}
	c.subjByID[id] = out
	c.mu.Unlock()
	return out, nil
}

// Registered is a schema's registration under a subject.
type Registered struct {
	Subject string
	ID      int
	Version int
}

// Lookup finds schema under subject. It returns ErrNotFound when the
// subject does not exist or does not hold the schema.
func (c *Client) Lookup(subject, schema string) (Registered, error) {
	s, err := c.rar.LookupSchema(subject, schema, srclient.Avro)
	if err != nil {
		return Registered{}, fmt.Errorf("subject %s: %w", subject, classify(err))
	}
	return Registered{Subject: subject, ID: s.ID(), Version: s.Version()}, nil
}

// Register checks schema against the subject's compatibility level, then
// registers it and returns its ID and version. A schema already
// registered under the subject is returned as it is.
func (c *Client) Register(subject, schema string) (Registered, error) {
	if r, err := c.Lookup(subject, schema); err == nil || !errors.Is(err, ErrNotFound) {
		return r, err
	}
	if err := c.CheckSubject(subject, schema); err != nil {
		return Registered{}, err
	}
	if _, err := c.rar.CreateSchema(subject, schema, srclient.Avro); err != nil {
		err = classify(err)
		if errors.Is(err, ErrIncompatible) {
			return Registered{}, &IncompatibleError{Subject: subject, Reason: "the registry refused the schema: " + err.Error()}
		}
		return Registered{}, fmt.Errorf("registering under %s: %w", subject, err)
	}
	// CreateSchema answers with version 0 even on a real registry: ask.
	return c.Lookup(subject, schema)
}

// Level returns the compatibility level of subject, falling back to the
// global level.
func (c *Client) Level(subject string) (string, error) {
	l, err := c.subj.GetCompatibilityLevel(subject, true)
	if err != nil {
		return "", fmt.Errorf("compatibility level of %s: %w", subject, classify(err))
	}
	return strings.ToUpper(string(*l)), nil
}

// Versions returns the schemas of a subject, oldest first, with their
// version numbers. A subject that does not exist has none.
func (c *Client) Versions(subject string) ([]int, []string, error) {
	vs, err := c.subj.GetSchemaVersions(subject)
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrNotFound) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("versions of %s: %w", subject, err)
	}
	slices.Sort(vs)
	texts := make([]string, len(vs))
	for i, v := range vs {
		s, err := c.subj.GetSchemaByVersion(subject, v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s version %d: %w", subject, v, classify(err))
		}
		texts[i] = s.Schema()
	}
	return vs, texts, nil
}

// Latest returns the latest schema of subject and its version, or
// ErrNotFound.
func (c *Client) Latest(subject string) (string, int, error) {
	vs, err := c.subj.GetSchemaVersions(subject)
	if err != nil {
		return "", 0, fmt.Errorf("versions of %s: %w", subject, classify(err))
	}
	if len(vs) == 0 {
		return "", 0, fmt.Errorf("subject %s: %w", subject, ErrNotFound)
	}
	v := slices.Max(vs)
	s, err := c.subj.GetSchemaByVersion(subject, v)
	if err != nil {
		return "", 0, fmt.Errorf("%s version %d: %w", subject, v, classify(err))
	}
	return s.Schema(), v, nil
}

// CheckSubject checks that schema may be registered under subject: it is
// compatible with the subject's existing versions under its level. A
// subject that does not exist accepts any schema.
func (c *Client) CheckSubject(subject, schema string) error {
	vs, texts, err := c.Versions(subject)
	if err != nil || len(vs) == 0 {
		return err
	}
	level, err := c.Level(subject)
	if err != nil {
		return err
	}
	return CheckCompatibility(subject, level, schema, vs, texts)
}

// classify maps a srclient error to our errors: 404 to ErrNotFound, 409
// to ErrIncompatible, 422 to ErrInvalidSchema, 401 and 403 to
// ErrAccessDenied (fatal), anything else (network,
// timeout, 5xx, a body that is not the registry's) to
// cdc.ErrRegistryUnavailable, which is transient.
func classify(err error) error {
	status := 0
	var se srclient.Error
	if errors.As(err, &se) {
		status = se.Code
		for status >= 1000 {
			status /= 10 // 40403 -> 404
		}
	} else if msg := err.Error(); len(msg) >= 4 && msg[3:4] == " " {
		// A non-JSON error body: srclient reports the HTTP status line.
		fmt.Sscanf(msg, "%d", &status)
	}
	switch status {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case http.StatusConflict:
		return fmt.Errorf("%w: %v", ErrIncompatible, err)
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w (HTTP %d; check registry_url's credentials: basic auth, bearer token or client certificate): %v", ErrAccessDenied, status, err)
	}
	return fmt.Errorf("%w: %v", cdc.ErrRegistryUnavailable, err)
}

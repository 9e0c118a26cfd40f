// Package payloadcodec encrypts what Temporal keeps of Parley's workflows
// (workflow inputs, signals, activity arguments and results, queries,
// updates, details and failures) with AES-256-GCM, one data key per
// customer.
//
// The key is chosen from the serialization context the SDK gives the codec:
// payloads of a conversation workflow (ID conversation/<page>/<psid>) and of
// its activities are encrypted with that customer's data key, created on
// first use; every other payload (the distributor, calls with no workflow)
// with the shared system key. Nothing reaches Temporal in clear, and
// erasing a customer's key (EraseCustomer) leaves their conversations in
// Temporal unreadable for good: crypto-shredding.
//
// An encrypted payload has metadata encoding=binary/encrypted and
// encryption-key-id=<key id>; its data is nonce || AES-GCM(proto bytes of
// the original payload), authenticated with the key id. Decode reads the
// key id from the metadata, so it needs no context, and passes through
// payloads that are not encrypted (histories recorded before encryption).
//
// Keys live in the database (store.CustomerKey), wrapped with the master
// key; the codec caches them for Options.TTL.
package payloadcodec

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"parley/store"
)

// Metadata of an encrypted payload.
const (
	// EncodingEncrypted is the encoding metadata of an encrypted payload.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the data key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// ErrKeyErased is returned (wrapped, with the key id) when a payload's key
// no longer exists: the customer's data was erased.
var ErrKeyErased = errors.New("data key erased")

// DefaultTTL is how long a key stays cached when Options.TTL is zero.
const DefaultTTL = time.Minute

// Keys is where data keys live (a *store.Store).
type Keys interface {
	// CustomerKey returns a customer's key, creating it on first use.
	CustomerKey(ctx context.Context, facebookPageID, psid string) (store.DataKey, error)
	// SystemKey returns the key of every other payload, created on first use.
	SystemKey(ctx context.Context) (store.DataKey, error)
	// KeyByID returns a key; store.ErrNotFound once it was erased.
	KeyByID(ctx context.Context, id string) (store.DataKey, error)
	// EraseCustomerKey deletes a customer's key(s) and returns their ids.
	EraseCustomerKey(ctx context.Context, facebookPageID, psid string) ([]string, error)
}

// Options tune a Codec.
type Options struct {
	// TTL is how long a key (or the news that it was erased) stays cached
	// (default DefaultTTL). After an erasure, this process forgets the key at
	// once (EraseCustomer, Forget); other processes within TTL.
	TTL time.Duration
	// Timeout bounds one database lookup (default 5s): the SDK gives a
	// codec no context, and workflow tasks have their own deadline.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Codec is a converter.PayloadCodec and, through WithSerializationContext,
// picks the customer's key. The value New returns uses the system key. It
// is safe for concurrent use; values derived from it share one key cache.
type Codec struct {
	ring *keyring
	// owner is the customer whose key encrypts; zero: the system key.
	owner customer
}

var (
	_ converter.PayloadCodec                         = (*Codec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*Codec)(nil)
)

// New returns a Codec over keys.
func New(keys Keys, opts Options) *Codec {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Codec{ring: &keyring{
		keys: keys, opts: opts, log: opts.Logger.With("component", "payloadcodec"),
		byID: map[string]entry{}, byOwner: map[customer]entry{},
	}}
}

// DataConverter is the SDK's default converter with this codec: give it to
// the Temporal client (workers share the client's).
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encrypts failures too: their details with the same key
// as the payloads around them, and their messages and stack traces
// (EncodeCommonAttributes), which may quote customer data. The SDK's
// default failure converter would leave them in clear.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return newFailureConverter(c.DataConverter())
}

type failureConverter struct {
	converter.FailureConverter
	dc converter.DataConverter
}

var _ converter.FailureConverterWithSerializationContext = failureConverter{}

func newFailureConverter(dc converter.DataConverter) failureConverter {
	return failureConverter{dc: dc, FailureConverter: temporal.NewDefaultFailureConverter(
		temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})}
}

func (f failureConverter) WithSerializationContext(ctx converter.SerializationContext) converter.FailureConverter {
	return newFailureConverter(converter.WithDataConverterSerializationContext(f.dc, ctx))
}

// WithSerializationContext returns the codec for the workflow the payloads
// belong to: a conversation's customer key, else the system key.
func (c *Codec) WithSerializationContext(ctx converter.SerializationContext) converter.PayloadCodec {
	var workflowID string
	switch sc := ctx.(type) {
	case converter.WorkflowSerializationContext:
		workflowID = sc.WorkflowID
	case converter.ActivitySerializationContext:
		workflowID = sc.WorkflowID
	}
	page, psid, ok := ParseConversationWorkflowID(workflowID)
	if !ok {
		return &Codec{ring: c.ring}
	}
	return &Codec{ring: c.ring, owner: customer{page: page, psid: psid}}
}

// KeyOwner says whose key Encode uses: a customer's page and PSID, or two
// empty strings for the system key.
func (c *Codec) KeyOwner() (facebookPageID, psid string) { return c.owner.page, c.owner.psid }

// Encode encrypts every payload with the codec's key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if len(payloads) == 0 {
		return payloads, nil
	}
	k, err := c.ring.ownerKey(c.owner)
	if err != nil {
		// A failed lookup (database down) retries the workflow task
		// instead of failing the workflow.
		return payloads, converter.NewWorkflowTaskFailureError(fmt.Errorf("payloadcodec: encode: %w", err))
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil {
			continue
		}
		if out[i], err = k.seal(p); err != nil {
			return payloads, fmt.Errorf("payloadcodec: encode: %w", err)
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads and passes the others through. A
// payload whose key was erased fails with ErrKeyErased.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := c.ring.decode(payloads, false)
	if err != nil {
		// Retry the workflow task rather than fail the workflow: nothing is
		// lost while the database is down or an operator looks.
		return payloads, converter.NewWorkflowTaskFailureError(fmt.Errorf("payloadcodec: decode: %w", err))
	}
	return out, nil
}

// CachedKeys is the number of keys this process holds in memory.
func (c *Codec) CachedKeys() int {
	c.ring.mu.Lock()
	defer c.ring.mu.Unlock()
	return len(c.ring.byID)
}

// Forget drops a customer's key from this process's cache (after its
// erasure). Other processes forget it within Options.TTL.
func (c *Codec) Forget(facebookPageID, psid string) {
	c.ring.forget(customer{page: facebookPageID, psid: psid})
}

// EraseCustomer erases a customer's data key and forgets it: every payload
// encrypted with it becomes unreadable. It returns the ids of the keys
// erased. Workflows still running with it fail their next workflow task:
// end (terminate) them first.
func (c *Codec) EraseCustomer(ctx context.Context, facebookPageID, psid string) ([]string, error) {
	ids, err := c.ring.keys.EraseCustomerKey(ctx, facebookPageID, psid)
	// Forget even on error: the deletion may have committed.
	c.Forget(facebookPageID, psid)
	if err != nil {
		return nil, fmt.Errorf("payloadcodec: erase: %w", err)
	}
	c.ring.log.InfoContext(ctx, "customer data key erased", "facebook_page_id", facebookPageID, "psid", psid, "key_ids", ids)
	return ids, nil
}

// ParseConversationWorkflowID reads a conversation workflow's ID
// ("conversation/<facebook page id>/<psid>", workflows.ConversationWorkflowID).
// It lives here because package workflows depends on much that must not
// depend on the codec.
func ParseConversationWorkflowID(id string) (facebookPageID, psid string, ok bool) {
	rest, ok := strings.CutPrefix(id, "conversation/")
	if !ok {
		return "", "", false
	}
	page, psid, ok := strings.Cut(rest, "/")
	if !ok || page == "" || psid == "" || strings.Contains(psid, "/") {
		return "", "", false
	}
	return page, psid, true
}

// customer is a key's owner: a Facebook page and a PSID; zero: the system.
type customer struct{ page, psid string }

// dataKey is an opened key, ready to seal and open.
type dataKey struct {
	id    string
	owner customer
	aead  cipher.AEAD
}

func newDataKey(k store.DataKey) (*dataKey, error) {
	block, err := aes.NewCipher(k.Key)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	return &dataKey{id: k.ID, owner: customer{page: k.FacebookPageID, psid: k.PSID}, aead: aead}, nil
}

func (k *dataKey) seal(p *commonpb.Payload) (*commonpb.Payload, error) {
	plain, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshal payload: %w", err)
	}
	n := k.aead.NonceSize()
	nonce := make([]byte, n, n+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(k.id)},
		// The key id is authenticated: a payload relabelled with another
		// key id fails to open.
		Data: k.aead.Seal(nonce, nonce, plain, []byte(k.id)),
	}, nil
}

func (k *dataKey) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	n := k.aead.NonceSize()
	if len(p.Data) < n+k.aead.Overhead() {
		return nil, fmt.Errorf("payload encrypted with key %s is too short", k.id)
	}
	plain, err := k.aead.Open(nil, p.Data[:n], p.Data[n:], []byte(k.id))
	if err != nil {
		return nil, fmt.Errorf("payload encrypted with key %s does not authenticate (altered, or another key's)", k.id)
	}
	out := &commonpb.Payload{}
	if err := proto.Unmarshal(plain, out); err != nil {
		return nil, fmt.Errorf("payload encrypted with key %s: %w", k.id, err)
	}
	return out, nil
}

// keyring caches opened keys by id and by owner.
type keyring struct {
	keys Keys
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	byID    map[string]entry   // key id → key, or erased (key nil)
	byOwner map[customer]entry // owner → its current key
	// forgets counts Forget calls: a lookup that started before one does
	// not cache what it read (it may be the key just erased).
	forgets uint64
	flight  singleflight.Group
	// sweepAt is when store next drops expired entries: without it, every
	// customer ever seen would stay in memory (a worker meets thousands a
	// day).
	sweepAt time.Time
}

type entry struct {
	key     *dataKey // nil: erased
	expires time.Time
}

// ownerKey returns the key of owner (the zero owner: the system key).
func (r *keyring) ownerKey(owner customer) (*dataKey, error) {
	now := r.opts.Now()
	r.mu.Lock()
	e, ok := r.byOwner[owner]
	gen := r.forgets
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	// The generation in the flight's name: a lookup begun before a Forget
	// is not shared with callers after it.
	v, err, _ := r.flight.Do(fmt.Sprintf("owner\x00%d\x00%s\x00%s", gen, owner.page, owner.psid), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		var sk store.DataKey
		var err error
		if owner == (customer{}) {
			sk, err = r.keys.SystemKey(ctx)
		} else {
			sk, err = r.keys.CustomerKey(ctx, owner.page, owner.psid)
		}
		if err != nil {
			return nil, err
		}
		k, err := newDataKey(sk)
		if err != nil {
			return nil, err
		}
		r.store(gen, k, now)
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*dataKey), nil
}

// byKeyID returns the key of a payload; ErrKeyErased once it is gone.
func (r *keyring) byKeyID(id string) (*dataKey, error) {
	now := r.opts.Now()
	r.mu.Lock()
	e, ok := r.byID[id]
	gen := r.forgets
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.key == nil {
			return nil, fmt.Errorf("key %s: %w", id, ErrKeyErased)
		}
		return e.key, nil
	}
	v, err, _ := r.flight.Do(fmt.Sprintf("id\x00%d\x00%s", gen, id), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		sk, err := r.keys.KeyByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			// Remembered too: a history of an erased customer would
			// otherwise cost one query per payload.
			r.mu.Lock()
			if r.forgets == gen {
				r.byID[id] = entry{expires: now.Add(r.opts.TTL)}
			}
			r.mu.Unlock()
			return nil, fmt.Errorf("key %s: %w", id, ErrKeyErased)
		}
		if err != nil {
			return nil, err
		}
		k, err := newDataKey(sk)
		if err != nil {
			return nil, err
		}
		r.store(gen, k, now)
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*dataKey), nil
}

// store caches k unless a Forget happened since the lookup began.
func (r *keyring) store(gen uint64, k *dataKey, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forgets != gen {
		return
	}
	e := entry{key: k, expires: now.Add(r.opts.TTL)}
	r.byID[k.id] = e
	r.byOwner[k.owner] = e
	if now.After(r.sweepAt) {
		r.sweepAt = now.Add(r.opts.TTL)
		for id, e := range r.byID {
			if !now.Before(e.expires) {
				delete(r.byID, id)
			}
		}
		for o, e := range r.byOwner {
			if !now.Before(e.expires) {
				delete(r.byOwner, o)
			}
		}
	}
}

func (r *keyring) forget(owner customer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgets++
	delete(r.byOwner, owner)
	for id, e := range r.byID {
		if e.key != nil && e.key.owner == owner {
			delete(r.byID, id)
		}
	}
}

// decode opens every encrypted payload. lenient leaves payloads whose key
// was erased as they are (the codec server shows what remains).
func (r *keyring) decode(payloads []*commonpb.Payload, lenient bool) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		if id == "" {
			return nil, fmt.Errorf("encrypted payload %d has no %s", i, MetadataKeyID)
		}
		k, err := r.byKeyID(id)
		if lenient && errors.Is(err, ErrKeyErased) {
			out[i] = p
			continue
		}
		if err != nil {
			return nil, err
		}
		if out[i], err = k.open(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

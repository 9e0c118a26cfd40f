package payloadcodec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"parley/payloadcodec"
	"parley/secrets"
	"parley/store"
	"parley/workflows"
)

const (
	page = "200000000000001"
	psid = "300000000000001"
)

// newStore opens a fresh, migrated SQLite store with its own master key.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	enc, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "parley.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// countingKeys counts the database lookups behind the cache.
type countingKeys struct {
	payloadcodec.Keys
	mu             sync.Mutex
	owners, byID   int
	failNextLookup error
}

func (k *countingKeys) CustomerKey(ctx context.Context, p, s string) (store.DataKey, error) {
	k.mu.Lock()
	k.owners++
	err := k.failNextLookup
	k.failNextLookup = nil
	k.mu.Unlock()
	if err != nil {
		return store.DataKey{}, err
	}
	return k.Keys.CustomerKey(ctx, p, s)
}

func (k *countingKeys) KeyByID(ctx context.Context, id string) (store.DataKey, error) {
	k.mu.Lock()
	k.byID++
	k.mu.Unlock()
	return k.Keys.KeyByID(ctx, id)
}

func (k *countingKeys) counts() (owners, byID int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.owners, k.byID
}

func conversationCodec(c *payloadcodec.Codec, page, psid string) converter.PayloadCodec {
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: workflows.ConversationWorkflowID(page, psid)})
}

func jsonPayload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func encodeOne(t *testing.T, c converter.PayloadCodec, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("encode gave %d payloads, want 1", len(out))
	}
	return out[0]
}

func keyID(p *commonpb.Payload) string { return string(p.GetMetadata()[payloadcodec.MetadataKeyID]) }

// A conversation's payloads are encrypted with its customer's key, anything
// else with the system key; every one decrypts back to the original, and
// nothing of the clear text shows in the encrypted payload.
func TestRoundTripWithCustomerAndSystemKeys(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	codec := payloadcodec.New(s, payloadcodec.Options{})
	clear := jsonPayload(t, map[string]string{"text": "my parcel never arrived"})

	enc := encodeOne(t, conversationCodec(codec, page, psid), clear)
	ck, err := s.CustomerKey(ctx, page, psid)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc.Metadata[converter.MetadataEncoding]); got != payloadcodec.EncodingEncrypted {
		t.Errorf("encoding %q, want %q", got, payloadcodec.EncodingEncrypted)
	}
	if keyID(enc) != ck.ID {
		t.Errorf("encrypted with key %q, want the customer's %q", keyID(enc), ck.ID)
	}
	if bytes.Contains(enc.Data, []byte("parcel")) || len(enc.Metadata) != 2 {
		t.Errorf("encrypted payload shows the clear text or more metadata: %v", enc)
	}

	sysEnc := encodeOne(t, codec, clear)
	sk, err := s.SystemKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if keyID(sysEnc) != sk.ID || sk.ID == ck.ID {
		t.Errorf("without context: key %q, want the system key %q (customer's %q)", keyID(sysEnc), sk.ID, ck.ID)
	}
	other := encodeOne(t, conversationCodec(codec, page, "300000000000002"), clear)
	if keyID(other) == ck.ID || keyID(other) == sk.ID {
		t.Errorf("another customer's payload used key %q", keyID(other))
	}

	// Any codec value decodes any payload: the key id travels with it.
	for _, p := range []*commonpb.Payload{enc, sysEnc, other} {
		out, err := codec.Decode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]string
		if err := converter.GetDefaultDataConverter().FromPayload(out[0], &v); err != nil {
			t.Fatal(err)
		}
		if v["text"] != "my parcel never arrived" {
			t.Errorf("decoded %v", v)
		}
	}
	// The same clear text encrypts differently each time (random nonce).
	if again := encodeOne(t, conversationCodec(codec, page, psid), clear); bytes.Equal(again.Data, enc.Data) {
		t.Error("two encryptions of one payload are identical")
	}
}

// Payloads that are not encrypted (histories recorded before encryption)
// pass through Decode unchanged; nil stays nil.
func TestDecodePassesThroughPlainPayloads(t *testing.T) {
	codec := payloadcodec.New(newStore(t), payloadcodec.Options{})
	plain := jsonPayload(t, "hello")
	binary := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/null")}}
	out, err := codec.Decode([]*commonpb.Payload{plain, nil, binary})
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != plain || out[1] != nil || out[2] != binary {
		t.Errorf("plain payloads changed: %v", out)
	}
}

// The key is chosen from the serialization context: a conversation
// workflow's own payloads and its activities' use the customer's key; other
// workflows, Nexus and no context use the system key.
func TestSerializationContextSelectsTheKey(t *testing.T) {
	codec := payloadcodec.New(newStore(t), payloadcodec.Options{})
	id := workflows.ConversationWorkflowID(page, psid)
	for _, tc := range []struct {
		name       string
		ctx        converter.SerializationContext
		page, psid string
	}{
		{"workflow", converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: id}, page, psid},
		{"activity", converter.ActivitySerializationContext{Namespace: "default", WorkflowID: id, WorkflowType: "Conversation", ActivityType: "RecordMessages"}, page, psid},
		{"distributor", converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: workflows.DistributorWorkflowID()}, "", ""},
		{"distributor's activity", converter.ActivitySerializationContext{Namespace: "default", WorkflowID: workflows.DistributorWorkflowID()}, "", ""},
		{"standalone activity", converter.ActivitySerializationContext{Namespace: "default"}, "", ""},
		{"nexus", converter.NexusSerializationContext{Endpoint: "e", Service: "s", Operation: "o"}, "", ""},
		{"none", nil, "", ""},
		{"malformed id", converter.WorkflowSerializationContext{WorkflowID: "conversation/" + page}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := codec.WithSerializationContext(tc.ctx).(*payloadcodec.Codec)
			if !ok {
				t.Fatalf("WithSerializationContext gave %T", codec.WithSerializationContext(tc.ctx))
			}
			if p, s := c.KeyOwner(); p != tc.page || s != tc.psid {
				t.Errorf("key of %q/%q, want %q/%q", p, s, tc.page, tc.psid)
			}
		})
	}

	// Through the data converter, as the SDK calls it.
	s := newStore(t)
	codec = payloadcodec.New(s, payloadcodec.Options{})
	dc := converter.WithDataConverterSerializationContext(codec.DataConverter(), converter.ActivitySerializationContext{WorkflowID: id})
	p, err := dc.ToPayload("the customer's words")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := s.CustomerKey(context.Background(), page, psid)
	if err != nil {
		t.Fatal(err)
	}
	if keyID(p) != ck.ID {
		t.Errorf("data converter in an activity of the conversation: key %q, want %q", keyID(p), ck.ID)
	}
	var back string
	if err := codec.DataConverter().FromPayload(p, &back); err != nil || back != "the customer's words" {
		t.Errorf("FromPayload: %q, %v", back, err)
	}
}

func TestParseConversationWorkflowID(t *testing.T) {
	p, s, ok := payloadcodec.ParseConversationWorkflowID(workflows.ConversationWorkflowID(page, psid))
	if !ok || p != page || s != psid {
		t.Errorf("parse of workflows.ConversationWorkflowID: %q %q %v", p, s, ok)
	}
	for _, id := range []string{"", "distributor", "conversation/", "conversation//" + psid, "conversation/" + page + "/", "conversation/" + page, "conversation/a/b/c", "xconversation/a/b"} {
		if p, s, ok := payloadcodec.ParseConversationWorkflowID(id); ok {
			t.Errorf("%q parsed as %q/%q", id, p, s)
		}
	}
}

// Once a customer's key is erased, their payloads fail to decode with
// ErrKeyErased naming the key; other customers' still decode; the next
// payload of the customer gets a new key.
func TestErasedKey(t *testing.T) {
	s := newStore(t)
	codec := payloadcodec.New(s, payloadcodec.Options{})
	erased := encodeOne(t, conversationCodec(codec, page, psid), jsonPayload(t, "secret"))
	kept := encodeOne(t, conversationCodec(codec, page, "300000000000002"), jsonPayload(t, "kept"))
	if _, err := codec.Decode([]*commonpb.Payload{erased}); err != nil {
		t.Fatalf("before erasure: %v", err)
	}
	ids, err := codec.EraseCustomer(context.Background(), page, psid)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != keyID(erased) {
		t.Errorf("erased %v, want [%s]", ids, keyID(erased))
	}
	_, err = codec.Decode([]*commonpb.Payload{erased})
	if !errors.Is(err, payloadcodec.ErrKeyErased) || !strings.Contains(err.Error(), keyID(erased)) {
		t.Errorf("decode after erasure: %v, want ErrKeyErased naming %s", err, keyID(erased))
	}
	if _, err := codec.Decode([]*commonpb.Payload{kept}); err != nil {
		t.Errorf("another customer's payload: %v", err)
	}
	next := encodeOne(t, conversationCodec(codec, page, psid), jsonPayload(t, "again"))
	if keyID(next) == keyID(erased) {
		t.Error("after erasure the customer's payloads still use the erased key")
	}
}

// An altered payload, or one relabelled with another key's id, fails to
// decode (AES-GCM authenticates the data and the key id), without
// revealing anything.
func TestTamperedPayloadsFail(t *testing.T) {
	codec := payloadcodec.New(newStore(t), payloadcodec.Options{})
	enc := encodeOne(t, conversationCodec(codec, page, psid), jsonPayload(t, "secret"))
	sys := encodeOne(t, codec, jsonPayload(t, "other"))

	flipped := &commonpb.Payload{Metadata: enc.Metadata, Data: bytes.Clone(enc.Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{
		converter.MetadataEncoding: []byte(payloadcodec.EncodingEncrypted), payloadcodec.MetadataKeyID: []byte(keyID(sys)),
	}, Data: enc.Data}
	truncated := &commonpb.Payload{Metadata: enc.Metadata, Data: enc.Data[:8]}
	noKey := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(payloadcodec.EncodingEncrypted)}, Data: enc.Data}
	for name, p := range map[string]*commonpb.Payload{"flipped bit": flipped, "another key's id": relabelled, "truncated": truncated, "no key id": noKey} {
		out, err := codec.Decode([]*commonpb.Payload{p})
		if err == nil {
			t.Errorf("%s: decoded to %v", name, out)
			continue
		}
		if errors.Is(err, payloadcodec.ErrKeyErased) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Keys are cached both ways for the TTL: encoding and decoding a
// conversation's payloads does not read the database each time; Forget
// drops a customer's key at once; a failed lookup fails the workflow task
// (retried), not the workflow.
func TestKeyCache(t *testing.T) {
	keys := &countingKeys{Keys: newStore(t)}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	codec := payloadcodec.New(keys, payloadcodec.Options{TTL: time.Minute, Now: clock})
	conv := conversationCodec(codec, page, psid)

	var enc []*commonpb.Payload
	for range 10 {
		enc = append(enc, encodeOne(t, conv, jsonPayload(t, "hi")))
	}
	if _, err := codec.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if owners, byID := keys.counts(); owners != 1 || byID != 0 {
		t.Errorf("10 encodes and decodes read the database %d+%d times, want once", owners, byID)
	}
	advance(61 * time.Second)
	encodeOne(t, conv, jsonPayload(t, "hi"))
	if _, err := codec.Decode(enc[:1]); err != nil {
		t.Fatal(err)
	}
	if owners, byID := keys.counts(); owners != 2 || byID != 0 {
		t.Errorf("after the TTL: %d+%d lookups, want 2+0 (one read, caching both ways)", owners, byID)
	}
	codec.Forget(page, psid)
	if _, err := codec.Decode(enc[:1]); err != nil {
		t.Fatal(err)
	}
	if _, byID := keys.counts(); byID != 1 {
		t.Errorf("after Forget: %d lookups by id, want 1", byID)
	}

	keys.mu.Lock()
	keys.failNextLookup = errors.New("database is down")
	keys.mu.Unlock()
	_, err := conversationCodec(codec, page, "300000000000009").Encode([]*commonpb.Payload{jsonPayload(t, "x")})
	var taskFailure *converter.WorkflowTaskFailureError
	if !errors.As(err, &taskFailure) || !strings.Contains(err.Error(), "database is down") {
		t.Errorf("a failed lookup: %v, want a WorkflowTaskFailureError", err)
	}
	if p := encodeOne(t, conversationCodec(codec, page, "300000000000009"), jsonPayload(t, "x")); keyID(p) == "" {
		t.Error("no key after the database came back")
	}
}

// Expired keys leave the cache: a worker that met 100 customers an hour
// ago does not hold their keys any more.
func TestKeyCacheForgetsExpiredKeys(t *testing.T) {
	keys := newStore(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	codec := payloadcodec.New(keys, payloadcodec.Options{TTL: time.Minute, Now: clock})
	for i := range 100 {
		encodeOne(t, conversationCodec(codec, page, fmt.Sprintf("3100000000%05d", i)), jsonPayload(t, "hi"))
	}
	if n := codec.CachedKeys(); n != 100 {
		t.Fatalf("%d keys cached after 100 customers, want 100", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	encodeOne(t, conversationCodec(codec, page, "310000000099999"), jsonPayload(t, "hi"))
	if n := codec.CachedKeys(); n != 1 {
		t.Errorf("%d keys cached after the others expired, want 1", n)
	}
}

// Failures are encrypted too, messages and stack traces included, with
// the key of the workflow they belong to; the SDK decodes them back.
func TestFailuresAreEncrypted(t *testing.T) {
	s := newStore(t)
	codec := payloadcodec.New(s, payloadcodec.Options{})
	fc := converter.WithFailureConverterSerializationContext(codec.FailureConverter(),
		converter.WorkflowSerializationContext{WorkflowID: workflows.ConversationWorkflowID(page, psid)})
	f := fc.ErrorToFailure(temporal.NewApplicationError("refused: my parcel never arrived", "Refused", "detail: parcel"))
	ck, err := s.CustomerKey(context.Background(), page, psid)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.String(), "parcel") {
		t.Errorf("failure shows customer data: %v", f)
	}
	if keyID(f.GetEncodedAttributes()) != ck.ID {
		t.Errorf("message encrypted with %q, want the customer's key %q", keyID(f.GetEncodedAttributes()), ck.ID)
	}
	for _, d := range f.GetApplicationFailureInfo().GetDetails().GetPayloads() {
		if keyID(d) != ck.ID {
			t.Errorf("details encrypted with %q, want %q", keyID(d), ck.ID)
		}
	}
	back := codec.FailureConverter().FailureToError(f)
	var appErr *temporal.ApplicationError
	if !errors.As(back, &appErr) || appErr.Message() != "refused: my parcel never arrived" {
		t.Fatalf("decoded failure: %v", back)
	}
	var detail string
	if err := appErr.Details(&detail); err != nil || detail != "detail: parcel" {
		t.Errorf("details: %q, %v", detail, err)
	}
}

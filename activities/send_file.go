package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.temporal.io/sdk/temporal"

	"parley/blobs"
	"parley/messenger"
	"parley/store"
)

// sendFile sends an agent's file by attachment_id: the page's cached id for
// these bytes and type, or one uploaded now from the blob store (Meta then
// never fetches a URL of ours, and the same file goes once per page, not
// once per send). A cached id that Meta refuses as an invalid parameter
// (100 without a subcode, what an unknown or expired id gets) is
// forgotten, and the file uploaded and sent once more: a refusal means
// nothing was sent, so this cannot double the message.
func (a *Sender) sendFile(ctx context.Context, auth messenger.PageAuth, in SendInput) (SendOutcome, error) {
	f := in.File
	if err := checkOutFile(f); err != nil {
		return SendOutcome{}, temporal.NewNonRetryableApplicationError("not sent: "+err.Error(), SendImpossibleErrorType, err)
	}
	cached, err := a.Store.AttachmentUploadFor(ctx, auth.PageID, f.SHA256, f.Type)
	switch {
	case err == nil:
		out := a.sendByID(ctx, auth, in, cached.AttachmentID, true)
		if !staleAttachmentID(out) {
			return out, nil
		}
		a.log().WarnContext(ctx, "Meta refused a cached attachment_id: uploading the file again", "message", in.MessageID,
			"page", auth.PageID, "attachment_id", cached.AttachmentID, "code", out.Code, "subcode", out.Subcode)
		if err := a.Store.ForgetAttachmentUpload(ctx, auth.PageID, f.SHA256, f.Type, cached.AttachmentID); err != nil {
			// The next upload replaces it anyway.
			a.log().WarnContext(ctx, "refused attachment_id not forgotten", "attachment_id", cached.AttachmentID, "err", err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return SendOutcome{}, notAttempted(err, "the file's upload record is gone", "attachment upload of message %s", in.MessageID)
	}
	id, out, err := a.uploadFile(ctx, auth, in)
	if err != nil || id == "" {
		return out, err
	}
	return a.sendByID(ctx, auth, in, id, false), nil
}

// checkOutFile refuses a file reference the workflow should never carry.
func checkOutFile(f *OutFile) error {
	switch {
	case !slices.Contains(messenger.AttachmentTypes, f.Type):
		return fmt.Errorf("%w: attachment type %q", store.ErrInvalid, f.Type)
	case f.BlobKey == "" || f.SHA256 == "":
		return fmt.Errorf("%w: a file without its blob key or SHA-256", store.ErrInvalid)
	case f.Size > messenger.MaxAttachmentSize:
		return fmt.Errorf("%w: the file is %s; Messenger accepts files up to %s", store.ErrInvalid, messenger.ByteSize(f.Size), messenger.MaxAttachmentSizeText)
	}
	return nil
}

// staleAttachmentID: Meta refused the id itself (invalid parameter, no
// subcode). Other 100s (no such user 2018001, too large 2018109) would
// fail the same way after a new upload.
func staleAttachmentID(out SendOutcome) bool {
	return out.Outcome == OutcomeRefused && out.Code == 100 && out.Subcode == 0
}

func (a *Sender) sendByID(ctx context.Context, auth messenger.PageAuth, in SendInput, id string, cached bool) SendOutcome {
	msg := &messenger.OutMessage{
		Attachment: &messenger.OutAttachment{Type: in.File.Type, Payload: messenger.AttachmentPayload{AttachmentID: id}},
		Metadata:   Metadata(in.MessageID),
	}
	return a.send(ctx, auth, in, msg, "attachment_id", id, "cached", cached, "sha256", in.File.SHA256)
}

// uploadFile uploads the file from the blob store and caches its id. When
// there is no id, the outcome (or the error, before Meta was called) says
// why; a failed upload sent nothing, so it is retried (OutcomeRetry) or
// refused, never unknown.
func (a *Sender) uploadFile(ctx context.Context, auth messenger.PageAuth, in SendInput) (string, SendOutcome, error) {
	f := in.File
	if a.Blobs == nil {
		err := errors.New("Parley has no blob store for files")
		return "", SendOutcome{}, temporal.NewNonRetryableApplicationError("not sent: "+err.Error(), SendImpossibleErrorType, err)
	}
	r, err := a.Blobs.Get(ctx, f.BlobKey)
	if errors.Is(err, blobs.ErrNotFound) {
		return "", SendOutcome{}, temporal.NewNonRetryableApplicationError("not sent: the file is no longer stored (the customer's data may have been erased)", SendImpossibleErrorType, err)
	}
	if err != nil {
		return "", SendOutcome{}, notAttempted(err, "the file is gone", "read file %s", f.BlobKey)
	}
	defer func() {
		if cerr := r.Close(); cerr != nil {
			a.log().WarnContext(ctx, "close blob", "key", f.BlobKey, "err", cerr)
		}
	}()
	if r.Size != f.Size {
		err := fmt.Errorf("the stored file %s is %d bytes, not %d", f.BlobKey, r.Size, f.Size)
		return "", SendOutcome{}, temporal.NewNonRetryableApplicationError("not sent: "+err.Error(), SendImpossibleErrorType, err)
	}
	h := sha256.New()
	id, err := a.Graph.UploadAttachment(ctx, auth, messenger.UploadFile{
		Type: f.Type, ContentType: f.ContentType, Filename: f.Filename, Size: f.Size, Body: io.TeeReader(r, h),
	})
	if err != nil {
		out := uploadOutcome(err)
		a.log().WarnContext(ctx, "attachment upload failed", "message", in.MessageID, "page", auth.PageID, "sha256", f.SHA256,
			"outcome", out.Outcome, "code", out.Code, "subcode", out.Subcode, "err", err)
		return "", out, nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		// Keys are content hashes: a mismatch is a damaged store. The id
		// is not cached and nothing is sent.
		err := fmt.Errorf("the stored file %s has SHA-256 %s, not %s", f.BlobKey, got, f.SHA256)
		return "", SendOutcome{}, temporal.NewNonRetryableApplicationError("not sent: "+err.Error(), SendImpossibleErrorType, err)
	}
	if err := a.Store.SaveAttachmentUpload(ctx, auth.PageID, f.SHA256, f.Type, id); err != nil {
		// The send goes on by this id; the next send uploads again.
		a.log().WarnContext(ctx, "attachment_id not cached", "attachment_id", id, "err", err)
	}
	a.log().InfoContext(ctx, "attachment uploaded", "message", in.MessageID, "page", auth.PageID, "sha256", f.SHA256,
		"type", f.Type, "size", f.Size, "attachment_id", id)
	return id, SendOutcome{}, nil
}

// uploadOutcome classifies a failed upload like a send, except that
// nothing was sent: what might have been accepted is retried.
func uploadOutcome(err error) SendOutcome {
	if errors.Is(err, messenger.ErrInvalidRequest) {
		return SendOutcome{Outcome: OutcomeRefused, Class: string(messenger.ClassInvalidParameter), Reason: "Parley refused to upload the file: " + err.Error()}
	}
	ge, ok := messenger.AsGraphError(err)
	if !ok {
		return SendOutcome{Outcome: OutcomeRetry, Reason: "the file could not be uploaded to Meta (nothing was sent): " + err.Error()}
	}
	class := ge.Class()
	out := SendOutcome{Code: ge.Code, Subcode: ge.Subcode, Class: string(class), Reason: "the file upload failed: " + class.Reason()}
	if class.Retryable() {
		out.Outcome = OutcomeRetry
	} else {
		out.Outcome = OutcomeRefused
	}
	return out
}

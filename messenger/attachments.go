package messenger

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Files a page sends (Attachment Upload API).
//
// Sources: the spec (../shared/spec/messenger-platform.md: "25 MB per file,
// 8 MB for images fetched by URL") and Meta's "Saving assets" page
// (developers.facebook.com/documentation/business-messaging/messenger-platform/
// send-messages/saving-assets, 2026): "up to 25 MB in size: image (8 MB max
// for URL uploads), audio (Content-Type header must use type audio), video,
// file". Meta lists no formats per type. The image, audio and video formats
// below are those Messenger is known to play inline (Webex Connect's table of
// Messenger's outbound types: jpg, gif, webp, png; mp3, m4a; mp4, mov, 3gp),
// kept conservative: any other format goes as type file, which the customer
// downloads. Executables and scripts are refused: Messenger blocks them
// (unconfirmed, as for every chat channel), and a contact center has no
// reason to send them.

// MaxAttachmentSize is the largest file Parley uploads: Meta's 25 MB, read
// as 25 MiB like the files customers send (activities.MaxInboundFile). Parley
// uploads the bytes itself, so the 8 MB limit of images Meta fetches by URL
// does not apply.
const MaxAttachmentSize = 25 << 20

// MaxAttachmentSizeText is MaxAttachmentSize as agents read it.
const MaxAttachmentSizeText = "25 MB"

// AttachmentTypes are the attachment types of the Send API, in order.
var AttachmentTypes = []string{AttachmentImage, AttachmentAudio, AttachmentVideo, AttachmentFile}

// inline are the media types Messenger shows as an image, plays as audio or
// as video; any other accepted type is sent as a file.
var inline = map[string]string{
	"image/jpeg": AttachmentImage, "image/png": AttachmentImage, "image/gif": AttachmentImage, "image/webp": AttachmentImage,
	"audio/mpeg": AttachmentAudio, "audio/mp4": AttachmentAudio, "audio/aac": AttachmentAudio,
	"video/mp4": AttachmentVideo, "video/quicktime": AttachmentVideo, "video/3gpp": AttachmentVideo,
}

// AcceptedTypesText says what Messenger accepts, for errors.
const AcceptedTypesText = "Messenger shows JPEG, PNG, GIF and WebP images, plays MP3 and M4A/AAC audio and MP4, MOV and 3GP video; " +
	"any other file (PDF, documents, archives...) is sent as a file to download, except programs and scripts"

// aliases map the names browsers and servers give to the types above.
var aliases = map[string]string{
	"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
	"audio/mp3": "audio/mpeg", "audio/x-mp3": "audio/mpeg", "audio/mpeg3": "audio/mpeg", "audio/x-mpeg": "audio/mpeg",
	"audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4", "audio/x-aac": "audio/aac",
	"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav",
	"video/x-m4v": "video/mp4", "video/3gp": "video/3gpp",
	"application/x-zip-compressed": "application/zip", "application/x-gzip": "application/gzip",
	"application/x-pdf": "application/pdf",
}

// executableTypes are media types of programs and scripts.
var executableTypes = []string{
	"application/x-msdownload", "application/x-ms-dos-executable", "application/x-dosexec", "application/x-msdos-program",
	"application/vnd.microsoft.portable-executable", "application/x-executable", "application/x-elf", "application/x-sharedlib",
	"application/x-mach-binary", "application/x-msi", "application/x-ms-installer", "application/x-ole-storage+msi",
	"application/x-sh", "application/x-csh", "application/x-bat", "text/x-shellscript", "application/x-shellscript",
	"application/java-archive", "application/x-java-archive", "application/java-vm", "application/vnd.android.package-archive",
	"application/x-apple-diskimage", "application/hta", "application/x-ms-shortcut", "application/x-powershell",
	"text/vbscript", "application/x-vbscript",
}

// executableExts are the file name extensions of programs and scripts, as
// the customer's device would see them.
var executableExts = []string{
	".exe", ".com", ".scr", ".pif", ".cpl", ".dll", ".sys", ".msi", ".msp", ".bat", ".cmd", ".ps1", ".psm1",
	".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".lnk", ".reg", ".jar", ".apk", ".app", ".dmg",
	".sh", ".command", ".elf", ".bin", ".run", ".gadget",
}

// FileTypeError is a file Messenger refuses (or that contradicts what it
// claims to be); Error says why and what is accepted.
type FileTypeError struct{ Reason string }

func (e *FileTypeError) Error() string { return e.Reason }

// IsFileTypeError reports whether err is a *FileTypeError.
func IsFileTypeError(err error) bool {
	var fe *FileTypeError
	return errors.As(err, &fe)
}

func refuseType(format string, args ...any) error {
	return &FileTypeError{Reason: fmt.Sprintf(format, args...) + ". " + AcceptedTypesText + "."}
}

// FileKind is how a file is sent: its attachment type and media type.
type FileKind struct {
	Type        string // image | audio | video | file
	ContentType string // the media type, as declared and confirmed by the bytes
}

// DetectFile decides how a file is sent, from its first bytes (up to 512
// are used), the media type it was declared with ("" when none), its file
// name and the attachment type asked for ("" to choose; "file" sends
// anything accepted as a file to download). It refuses, with a
// *FileTypeError, programs and scripts, a declared type that the bytes
// contradict, and an inline type the content is not.
func DetectFile(head []byte, declared, filename, want string) (FileKind, error) {
	if want != "" && !slices.Contains(AttachmentTypes, want) {
		return FileKind{}, refuseType("the attachment type must be image, audio, video or file, not %q", want)
	}
	sniffed := sniff(head)
	decl := NormalizeMediaType(declared)
	if decl == "application/octet-stream" {
		decl = "" // says nothing
	}
	ext := strings.ToLower(path.Ext(filename))
	switch {
	case slices.Contains(executableTypes, sniffed), slices.Contains(executableTypes, decl):
		return FileKind{}, refuseType("programs and scripts are not sent (the file is %s)", firstOf(sniffed, decl))
	case slices.Contains(executableExts, ext):
		return FileKind{}, refuseType("programs and scripts are not sent (the file name ends in %s)", ext)
	}
	ct := decl
	switch {
	case decl == "" && sniffed == "":
		ct = "application/octet-stream"
	case decl == "":
		ct = sniffed
	case !consistent(decl, sniffed):
		what := "are not recognisable"
		if sniffed != "" {
			what = "are " + sniffed
		}
		return FileKind{}, refuseType("the file is declared as %s but its bytes %s", decl, what)
	}
	typ := AttachmentFile
	if t, ok := inline[ct]; ok {
		typ = t
	}
	switch want {
	case "", typ:
	case AttachmentFile:
		typ = AttachmentFile
	default:
		return FileKind{}, refuseType("a %s cannot be sent as type %s", ct, want)
	}
	return FileKind{Type: typ, ContentType: ct}, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// NormalizeMediaType is a media type without parameters, lower case, with
// common aliases resolved ("" when absent or malformed).
func NormalizeMediaType(s string) string {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return ""
	}
	if a, ok := aliases[mt]; ok {
		return a
	}
	return mt
}

// sniff is the media type the bytes show ("" when they show none), from
// net/http's sniffer plus the programs it does not know.
func sniff(head []byte) string {
	if len(head) > 512 {
		head = head[:512]
	}
	switch {
	case len(head) == 0:
		return ""
	case bytes.HasPrefix(head, []byte("MZ")) && !strings.HasPrefix(http.DetectContentType(head), "text/"):
		return "application/x-msdownload" // DOS/Windows program (a text starting "MZ" is text)
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "application/x-executable"
	case bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa, 0xce}), bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa, 0xcf}),
		bytes.HasPrefix(head, []byte{0xce, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(head, []byte{0xcf, 0xfa, 0xed, 0xfe}),
		bytes.HasPrefix(head, []byte{0xca, 0xfe, 0xba, 0xbe}):
		return "application/x-mach-binary" // Mach-O, universal binaries and Java classes
	case bytes.HasPrefix(head, []byte("#!")):
		return "text/x-shellscript"
	}
	mt := NormalizeMediaType(http.DetectContentType(head))
	if mt == "application/octet-stream" {
		return ""
	}
	return mt
}

// sniffable are declared types whose bytes net/http always recognises: a
// file declared so that shows nothing recognisable is not what it claims.
func sniffable(mt string) bool {
	switch mt {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "application/pdf",
		"application/zip", "application/gzip", "video/webm", "application/ogg", "audio/ogg":
		return true
	}
	return zipBased(mt) || strings.HasPrefix(mt, "text/")
}

// zipBased are formats that are zip archives (Office Open XML,
// OpenDocument, EPUB...).
func zipBased(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.openxmlformats-officedocument.") ||
		strings.HasPrefix(mt, "application/vnd.oasis.opendocument.") || strings.HasSuffix(mt, "+zip")
}

// consistent reports whether a declared type fits what the bytes show.
func consistent(decl, sniffed string) bool {
	if sniffed == "" {
		return !sniffable(decl)
	}
	if decl == sniffed {
		return true
	}
	switch {
	case strings.HasPrefix(sniffed, "text/"):
		// Text: CSV, JSON, XML, SVG, RTF, source... any type but a binary
		// format the sniffer would have recognised.
		return strings.HasPrefix(decl, "text/") || !sniffable(decl)
	case sniffed == "application/zip":
		return zipBased(decl)
	case sniffed == "video/mp4":
		// An MP4 container: video, or audio only (M4A, AAC).
		return strings.HasPrefix(decl, "video/") || decl == "audio/mp4" || decl == "audio/aac"
	case sniffed == "application/ogg":
		return decl == "audio/ogg" || decl == "video/ogg" || decl == "audio/opus"
	case sniffed == "video/webm":
		return decl == "audio/webm"
	case sniffed == "application/gzip":
		return strings.Contains(decl, "gzip") || strings.Contains(decl, "tar")
	}
	return false
}

// ByteSize says a size in bytes as agents read it, in MB of 2^20 bytes
// like MaxAttachmentSizeText, rounded up: one byte over 25 MB reads 25.1.
func ByteSize(n int64) string {
	return fmt.Sprintf("%.1f MB (%d bytes)", math.Ceil(float64(n)/(1<<20)*10)/10, n)
}

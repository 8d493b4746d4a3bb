package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	kjson "sigs.k8s.io/json"
)

// MaxInputDepth bounds how deeply a submission's JSON may nest.
const MaxInputDepth = 100

// Kubernetes stores a SeekJob's input as a JSON value, not as text: the apiserver decodes it (numbers
// into int64 when they are integers that fit, else float64; strings into UTF-8, invalid bytes and lone
// surrogate escapes replaced by U+FFFD; the last of duplicate keys winning) and re-encodes it (keys
// sorted, no insignificant whitespace, numbers in their shortest form). What the worker receives is that
// re-encoding. So the frontend refuses everything the round trip would alter in value, and accepts
// everything else in the same canonical form the apiserver stores: the input it validates, measures and
// hashes is byte for byte the input the worker gets.

// checkJSON walks a JSON text and reports, as a 400 naming the field, anything whose value Kubernetes
// would not store exactly: invalid UTF-8, lone UTF-16 surrogate escapes, duplicate keys, numbers that
// do not fit an int64 or float64 exactly, and nesting deeper than MaxInputDepth. It also requires a single
// JSON object.
func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		off := invalidUTF8Offset(body)
		return invalid("", "the body is not valid UTF-8 (byte %d): Kubernetes would replace the invalid bytes", off)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "the body must be a JSON object, not empty")
	}
	w := &jsonWalker{body: body, dec: json.NewDecoder(bytes.NewReader(body))}
	w.dec.UseNumber()
	tok, err := w.token()
	if err != nil && !errors.Is(err, errLoneSurrogate) {
		return err
	}
	if tok != json.Delim('{') {
		return invalid("", "the body must be a JSON object")
	}
	if err := w.object(nil); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return invalid("", "the body must be a single JSON object, with nothing after it")
	}
	return nil
}

type jsonWalker struct {
	body []byte
	dec  *json.Decoder
}

// token reads the next token and checks a string token's escapes.
func (w *jsonWalker) token() (json.Token, error) {
	start := w.dec.InputOffset()
	tok, err := w.dec.Token()
	if err == io.EOF {
		return nil, invalid("", "the body is not valid JSON: unexpected end")
	}
	if err != nil {
		return nil, invalid("", "the body is not valid JSON: %v", err)
	}
	if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) && loneSurrogate(w.body[start:w.dec.InputOffset()]) {
		return tok, errLoneSurrogate
	}
	return tok, nil
}

var errLoneSurrogate = errors.New("lone surrogate")

// value checks the value starting with tok, at path (inside len(path) objects and arrays).
func (w *jsonWalker) value(tok json.Token, path []string) error {
	switch t := tok.(type) {
	case json.Delim:
		if len(path)+1 > MaxInputDepth {
			return invalid(Pointer(path), "the input nests objects and arrays deeper than %d levels", MaxInputDepth)
		}
		if t == '{' {
			return w.object(path)
		}
		return w.array(path)
	case json.Number:
		if err := exactNumber(string(t)); err != nil {
			return invalid(Pointer(path), "the number %s %v", abbreviate(string(t)), err)
		}
	}
	return nil
}

func (w *jsonWalker) object(path []string) error {
	seen := map[string]bool{}
	for {
		tok, err := w.token()
		if errors.Is(err, errLoneSurrogate) {
			return invalid(Pointer(path), "a key holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): it is not a character")
		}
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			return nil
		}
		key := tok.(string) // the decoder only yields string keys
		field := append(path[:len(path):len(path)], key)
		if seen[key] {
			return invalid(Pointer(field), "the key %q appears twice in the same object", abbreviate(key))
		}
		seen[key] = true
		tok, err = w.token()
		if errors.Is(err, errLoneSurrogate) {
			return invalid(Pointer(field), "the string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): it is not a character")
		}
		if err != nil {
			return err
		}
		if err := w.value(tok, field); err != nil {
			return err
		}
	}
}

func (w *jsonWalker) array(path []string) error {
	for i := 0; ; i++ {
		field := append(path[:len(path):len(path)], strconv.Itoa(i))
		tok, err := w.token()
		if errors.Is(err, errLoneSurrogate) {
			return invalid(Pointer(field), "the string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff): it is not a character")
		}
		if err != nil {
			return err
		}
		if tok == json.Delim(']') {
			return nil
		}
		if err := w.value(tok, field); err != nil {
			return err
		}
	}
}

// exactNumber reports whether Kubernetes keeps the JSON number text exactly: as an int64 when it is an
// integer literal that fits, else as the float64 whose shortest decimal form is the same number (0.1,
// 1.5e300 and 0.1e1 are kept; 12345678901234567890, 0.30000000000000000001 and 1e999 are not).
func exactNumber(text string) error {
	if !strings.ContainsAny(text, ".eE") {
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return errors.New("is beyond the range of a 64-bit float; send it as a string")
	}
	if !sameDecimal(text, strconv.FormatFloat(f, 'g', -1, 64)) {
		return fmt.Errorf("cannot be stored exactly (it would become %s); send it as a string", strconv.FormatFloat(f, 'g', -1, 64))
	}
	return nil
}

// sameDecimal reports whether two JSON number texts denote the same decimal value.
func sameDecimal(a, b string) bool {
	an, ad, ae, aok := decimal(a)
	bn, bd, be, bok := decimal(b)
	if !aok || !bok {
		return false
	}
	if ad == "" || bd == "" { // zero, whatever its sign
		return ad == bd
	}
	return an == bn && ad == bd && ae == be
}

// decimal splits a JSON number text into sign, significant digits (no leading or trailing zeros; "" for
// zero) and the exponent such that the value is 0.digits × 10^exp. ok is false for an exponent beyond
// int64.
func decimal(s string) (neg bool, digits string, exp int64, ok bool) {
	s, neg = strings.CutPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	all := intPart + frac
	trimmed := strings.TrimLeft(all, "0")
	if digits = strings.TrimRight(trimmed, "0"); digits == "" {
		return neg, "", 0, true
	}
	if hasExp {
		e, err := strconv.ParseInt(expText, 10, 64)
		if err != nil || e > 1<<62 || e < -(1<<62) {
			return neg, "", 0, false
		}
		exp = e
	}
	// The point sits after the integer part, less the leading zeros trimmed.
	return neg, digits, exp + int64(len(intPart)-(len(all)-len(trimmed))), true
}

// invalidUTF8Offset returns the offset of the first invalid UTF-8 sequence in b.
func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// loneSurrogate reports whether a raw JSON string literal (with any separators around it) holds a
// \uXXXX escape of a UTF-16 surrogate that is not part of a high-low pair.
func loneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			i++ // an escaped character, perhaps a backslash: skip it
			continue
		}
		r := hex4(raw[i+2 : i+6])
		i += 5
		switch {
		case r >= 0xd800 && r < 0xdc00: // high: a low must follow
			if i+7 <= len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := hex4(raw[i+3 : i+7]); lo >= 0xdc00 && lo < 0xe000 {
					i += 6
					continue
				}
			}
			return true
		case r >= 0xdc00 && r < 0xe000:
			return true
		}
	}
	return false
}

func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

// canonical decodes a checked JSON object as the apiserver does (sigs.k8s.io/json, integers kept as
// int64) into its members.
func canonicalObject(body []byte) (map[string]any, error) {
	var obj map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &obj); err != nil {
		return nil, invalid("", "the body is not valid JSON: %v", err)
	}
	return obj, nil
}

// storedForm encodes an input as the apiserver does: encoding/json, like the apiserver, sorts keys,
// escapes HTML characters and writes numbers in their shortest form. The apiserver encodes once to store
// and once more to answer a read, which changes one value again: a float -0 is written -0 and read back
// as the integer 0. So storedForm encodes twice as well.
func storedForm(v map[string]any) ([]byte, error) {
	once, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("", "the body cannot be encoded: %v", err)
	}
	again, err := canonicalObject(once)
	if err != nil {
		return nil, err
	}
	twice, err := json.Marshal(again)
	if err != nil {
		return nil, invalid("", "the body cannot be encoded: %v", err)
	}
	return twice, nil
}

// Pointer renders a path as a JSON pointer ("/a/0/b"; "" for the whole input).
func Pointer(path []string) string {
	var sb strings.Builder
	for _, t := range path {
		sb.WriteByte('/')
		sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return sb.String()
}

// abbreviate shortens long texts quoted in error messages.
func abbreviate(s string) string {
	const maxLen = 40
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// MaxBatchItems bounds the inputs of one batch.
const MaxBatchItems = 1000

// ParseBatch parses a batch body, {"inputs": [...]} with 1 to MaxBatchItems items, and returns each
// item's text for ParseSubmit. Unknown and repeated members are refused rather than ignored.
func ParseBatch(body []byte) ([]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, invalid("", "the body is not valid UTF-8 (byte %d): Kubernetes would replace the invalid bytes", invalidUTF8Offset(body))
	}
	var batch struct {
		Inputs []json.RawMessage `json:"inputs"`
	}
	strict, err := kjson.UnmarshalStrict(body, &batch)
	if err != nil {
		return nil, invalid("", `the body must be {"inputs": [...]}: %v`, err)
	}
	if len(strict) > 0 {
		return nil, invalid("", `the body must be {"inputs": [...]} and nothing else: %v`, strict[0])
	}
	if len(batch.Inputs) == 0 || len(batch.Inputs) > MaxBatchItems {
		return nil, invalid("inputs", "inputs must hold 1 to %d items", MaxBatchItems)
	}
	return batch.Inputs, nil
}

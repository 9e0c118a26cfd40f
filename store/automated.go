package store

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Variables of automated messages, written {name} in their texts. Every one
// is filled when a message is sent; see README for the fallbacks.
const (
	VarFirstName = "first_name" // the customer's first name
	VarAgent     = "agent"      // the assigned agent's name
	VarQueue     = "queue"      // the queue's name
	VarPosition  = "position"   // the place in the queue, from 1
	VarWait      = "wait"       // the queue's estimated wait, e.g. "5 min"
	VarHours     = "hours"      // the queue's operating hours
)

var variables = []string{VarFirstName, VarAgent, VarQueue, VarPosition, VarWait, VarHours}

// Variables returns the variables automated messages may hold.
func Variables() []string { return slices.Clone(variables) }

// variableRef matches a {variable} reference in a text.
var variableRef = regexp.MustCompile(`\{([^{}\s]*)\}`)

// UnknownVariable returns the first {name} of text that is not a known
// variable, "" when there is none.
func UnknownVariable(text string) string {
	for _, m := range variableRef.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(variables, m[1]) {
			return m[1]
		}
	}
	return ""
}

// Check validates the message of trigger: text when enabled, Messenger's
// length limit, known variables only, translations in known languages.
func (m AutomatedMessage) Check(trigger string) error {
	if m.Enabled && strings.TrimSpace(m.Text) == "" {
		return invalidf("automated message %s is enabled without text", trigger)
	}
	if m.Step < 0 || m.EveryMinutes < 0 {
		return invalidf("automated message %s: step and every_minutes must not be negative", trigger)
	}
	if (m.Step != 0 || m.EveryMinutes != 0) && trigger != TriggerQueuePosition {
		return invalidf("automated message %s: step and every_minutes apply to %s only", trigger, TriggerQueuePosition)
	}
	if err := checkText(trigger, "text", m.Text); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, lang := range slices.Sorted(maps.Keys(m.Translations)) {
		canon, ok := CanonicalLanguage(lang)
		if !ok {
			return invalidf("automated message %s: translation language %q: want a code such as en or fr-CA", trigger, lang)
		}
		if seen[canon] {
			return invalidf("automated message %s: translation %s is given twice", trigger, canon)
		}
		seen[canon] = true
		text := m.Translations[lang]
		if strings.TrimSpace(text) == "" {
			return invalidf("automated message %s: translation %s is empty", trigger, canon)
		}
		if err := checkText(trigger, "translation "+canon, text); err != nil {
			return err
		}
	}
	return nil
}

func checkText(trigger, what, text string) error {
	if utf8.RuneCountInString(text) > MaxAutomatedMessageText {
		return invalidf("automated message %s: %s is longer than %d characters", trigger, what, MaxAutomatedMessageText)
	}
	if v := UnknownVariable(text); v != "" {
		return invalidf("automated message %s: %s has unknown variable {%s}; the variables are {%s}",
			trigger, what, v, strings.Join(variables, "}, {"))
	}
	return nil
}

// MessageText chooses the text for a customer's locale among the default
// text (in the workstream's language) and its translations: the exact
// language ("fr-CA"), then the locale's language ("fr"), then any
// translation of that language (sorted, so always the same one), then the
// default text. Meta's locales ("fr_CA") are accepted; "" picks the default.
func MessageText(text string, translations map[string]string, locale string) string {
	canon, ok := CanonicalLanguage(strings.ReplaceAll(strings.TrimSpace(locale), "_", "-"))
	if !ok || len(translations) == 0 {
		return text
	}
	if t, ok := translations[canon]; ok {
		return t
	}
	lang, _, _ := strings.Cut(canon, "-")
	if t, ok := translations[lang]; ok {
		return t
	}
	for _, k := range slices.Sorted(maps.Keys(translations)) {
		if l, _, _ := strings.Cut(k, "-"); l == lang {
			return translations[k]
		}
	}
	return text
}

// FillVariables replaces every {variable} of text with its value in vars.
// A variable without a value (unknown, or "") is left out with what only
// made sense around it: the space before it, a comma that would dangle
// ("with you, {first_name}." reads "with you."), or, at the very start, the
// comma after it ("{first_name}, you are..." reads "You are..."). It never
// names someone who is not the customer.
func FillVariables(text string, vars map[string]string) string {
	var b strings.Builder
	last := 0
	capitalize := false
	write := func(seg string) {
		if capitalize && seg != "" {
			r, size := utf8.DecodeRuneInString(seg)
			seg, capitalize = string(unicode.ToUpper(r))+seg[size:], false
		}
		b.WriteString(seg)
	}
	for _, loc := range variableRef.FindAllStringSubmatchIndex(text, -1) {
		if loc[0] < last {
			continue // inside what an earlier variable left out
		}
		name := text[loc[2]:loc[3]]
		v, known := vars[name]
		if !known && !slices.Contains(variables, name) {
			continue // not a variable (validated texts have none)
		}
		before, after := text[last:loc[0]], loc[1]
		if v == "" {
			before = strings.TrimRight(before, " ")
			rest := text[after:]
			switch {
			case strings.HasSuffix(before, ",") && (rest == "" || strings.ContainsRune(".!?;:,", rune(rest[0]))):
				before = strings.TrimSuffix(before, ",")
			case b.Len() == 0 && before == "" && strings.HasPrefix(rest, ","):
				after++
				for after < len(text) && text[after] == ' ' {
					after++
				}
				capitalize = true
			}
		}
		write(before)
		write(v)
		last = after
	}
	write(text[last:])
	return b.String()
}

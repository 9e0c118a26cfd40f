package messenger

import (
	"fmt"
	"slices"
)

// TokenProblem says what is wrong with a page token as debug_token
// described it, for the app appID and the Facebook page pageID: "" when it
// can send.
func TokenProblem(info TokenInfo, appID, pageID string) string {
	switch {
	case !info.IsValid:
		p := "Meta says the page access token is invalid"
		if info.ErrorCode != 0 {
			p += fmt.Sprintf(" (code %d, subcode %d): %s", info.ErrorCode, info.ErrorSubcode, info.ErrorMessage)
		}
		return p
	case info.AppID != "" && info.AppID != appID:
		return fmt.Sprintf("the token was issued for app %s, not this account's app %s", info.AppID, appID)
	case info.ProfileID != "" && info.ProfileID != pageID:
		return fmt.Sprintf("the token belongs to page %s, not page %s", info.ProfileID, pageID)
	case len(info.Scopes) > 0 && !slices.Contains(info.Scopes, "pages_messaging"):
		return "the token lacks the pages_messaging permission"
	}
	return ""
}

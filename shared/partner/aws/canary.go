package awspartner

// canaryAccounts are the AWS accounts that issue canary (honey) access
// keys: a key of one of them is bait, and a call with it trips its owner's
// alarm and tells them nothing about a leak. The list is TruffleHog's
// (https://github.com/trufflesecurity/trufflehog/blob/main/pkg/detectors/aws/access_keys/canary.go):
// Thinkst Canarytokens' accounts (canarytokens.org, its self-hosted
// edition and Thinkst Canary), then the accounts of the look-alike canary
// services TruffleHog found issuing such keys.
var canaryAccounts = map[string]bool{
	// Thinkst Canarytokens.
	"052310077262": true, "171436882533": true, "534261010715": true, "595918472158": true, "717712589309": true,
	"819147034852": true, "992382622183": true, "730335385048": true, "266735846894": true, "893192397702": true,
	// Copies of it.
	"044858866125": true, "251535659677": true, "344043088457": true, "351906852752": true, "390477818340": true,
	"426127672474": true, "427150556519": true, "439872796651": true, "445142720921": true, "465867158099": true,
	"637958123769": true, "693412236332": true, "732624840810": true, "735421457923": true, "959235150393": true,
	"982842642351": true,
}

// IsCanaryAccount reports whether account issues canary-token access keys.
func IsCanaryAccount(account string) bool { return canaryAccounts[account] }

package cloudwatch

import (
	"context"
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// class is what the destination does about an error (SPEC.md "Errors").
type class uint8

const (
	classRetry         class = iota // network, timeout, 5xx, throttling, anything unknown: back off and retry
	classNotFound                   // ResourceNotFoundException: create the stream (and group), then retry
	classAlreadyExists              // ResourceAlreadyExistsException: creation lost a race, which is success
	classInvalid                    // InvalidParameterException: the request's content; isolate the bad event
	classAccepted                   // DataAlreadyAcceptedException: the batch is already there
	classDenied                     // AccessDenied, ExpiredToken, UnrecognizedClient, 401/403: an operator must act
	classCredentials                // no credentials could be obtained (chain, STS AssumeRole)
)

// deniedCodes are the error codes an operator must fix; data is kept meanwhile.
var deniedCodes = map[string]bool{
	"AccessDeniedException":       true,
	"AccessDenied":                true,
	"ExpiredTokenException":       true,
	"ExpiredToken":                true,
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidSignatureException":   true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
	"NotAuthorized":               true,
}

// classify maps an SDK error to a class and the service's error code ("" when there is none).
// The caller checks its own context first: an error caused by cancellation is not classified.
func classify(err error) (class, string) {
	if err == nil {
		return classRetry, ""
	}
	// Credential problems surface as errors while signing, before any request; they may wrap an
	// STS API error (AssumeRole denied), which must not be mistaken for a CloudWatch denial.
	if msg := err.Error(); strings.Contains(msg, "get identity:") || strings.Contains(msg, "failed to retrieve credentials") {
		return classCredentials, apiCode(err)
	}
	code := apiCode(err)
	switch {
	case code == "ResourceNotFoundException":
		return classNotFound, code
	case code == "ResourceAlreadyExistsException":
		return classAlreadyExists, code
	case code == "InvalidParameterException" || code == "ValidationException":
		return classInvalid, code
	case code == "DataAlreadyAcceptedException":
		return classAccepted, code
	case deniedCodes[code]:
		return classDenied, code
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if s := re.HTTPStatusCode(); s == http.StatusUnauthorized || s == http.StatusForbidden {
			return classDenied, code
		}
	}
	return classRetry, code
}

// apiCode returns the service's error code, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiMessage returns the service's message when there is one, else the error text.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// isContextErr reports whether err comes from ctx being done.
func isContextErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ctx.Err()))
}

// resourceARN returns the ARN an IAM policy must allow: the stream's for PutLogEvents, else the
// group's with ":*" (the form DescribeLogGroups returns, which also covers its streams). account
// is "*" when unknown.
func resourceARN(partition, region, account, group, stream string) string {
	if account == "" {
		account = "*"
	}
	arn := "arn:" + partition + ":logs:" + region + ":" + account + ":log-group:" + group
	if stream != "" {
		return arn + ":log-stream:" + stream
	}
	return arn + ":*"
}

// partitionOf returns the ARN partition of a region.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	case strings.HasPrefix(region, "us-isof-"):
		return "aws-iso-f"
	}
	return "aws"
}

// arnInMessage returns the resource ARN quoted by an AccessDenied message ("... on resource:
// arn:aws:logs:...") so the hint names the real account, or "".
func arnInMessage(msg string) string {
	i := strings.Index(msg, "on resource: arn:")
	if i < 0 {
		return ""
	}
	rest := msg[i+len("on resource: "):]
	if j := strings.IndexAny(rest, " \t\n\"'"); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimRight(rest, ".,;")
}

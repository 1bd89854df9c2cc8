package cloudwatch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func opErr(err error) error {
	return &smithy.OperationError{ServiceID: "CloudWatch Logs", OperationName: "PutLogEvents", Err: err}
}

func httpErr(status int, err error) error {
	return opErr(&awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}})
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want class
	}{
		{"throttling", httpErr(400, &types.ThrottlingException{Message: new("Rate exceeded")}), classRetry},
		{"service unavailable", httpErr(503, &types.ServiceUnavailableException{}), classRetry},
		{"500 without a code", httpErr(500, errors.New("boom")), classRetry},
		{"limit exceeded", httpErr(400, &types.LimitExceededException{}), classRetry},
		{"operation aborted", httpErr(400, &types.OperationAbortedException{}), classRetry},
		{"network", opErr(&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}), classRetry},
		{"eof", opErr(io.ErrUnexpectedEOF), classRetry},
		{"not found", httpErr(400, &types.ResourceNotFoundException{}), classNotFound},
		{"already exists", httpErr(400, &types.ResourceAlreadyExistsException{}), classAlreadyExists},
		{"invalid parameter", httpErr(400, &types.InvalidParameterException{}), classInvalid},
		{"data already accepted", httpErr(400, &types.DataAlreadyAcceptedException{}), classAccepted},
		{"access denied", httpErr(400, &types.AccessDeniedException{}), classDenied},
		{"expired token", httpErr(400, &smithy.GenericAPIError{Code: "ExpiredTokenException"}), classDenied},
		{"unrecognized client", httpErr(400, &types.UnrecognizedClientException{}), classDenied},
		{"bare 403", httpErr(403, errors.New("forbidden")), classDenied},
		{"no credentials", opErr(fmt.Errorf("get identity: %w", errors.New("no EC2 IMDS role found"))), classCredentials},
		{"assume role denied", opErr(fmt.Errorf("get identity: %w", &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole",
			Err: &smithy.GenericAPIError{Code: "AccessDenied"}})), classCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, code := classify(c.err); got != c.want {
				t.Fatalf("classify(%v) = %d (%q), want %d", c.err, got, code, c.want)
			}
		})
	}
}

func TestARNs(t *testing.T) {
	cases := []struct{ region, account, group, stream, want string }{
		{"us-east-1", "", "/eks/app", "pod-1", "arn:aws:logs:us-east-1:*:log-group:/eks/app:log-stream:pod-1"},
		{"eu-west-1", "111122223333", "/eks/app", "", "arn:aws:logs:eu-west-1:111122223333:log-group:/eks/app:*"},
		{"cn-north-1", "1", "g", "", "arn:aws-cn:logs:cn-north-1:1:log-group:g:*"},
		{"us-gov-west-1", "1", "g", "", "arn:aws-us-gov:logs:us-gov-west-1:1:log-group:g:*"},
	}
	for _, c := range cases {
		if got := resourceARN(partitionOf(c.region), c.region, c.account, c.group, c.stream); got != c.want {
			t.Errorf("resourceARN = %q, want %q", got, c.want)
		}
	}
	msg := "User: arn:aws:sts::123:assumed-role/r/i is not authorized to perform: logs:PutLogEvents on resource: arn:aws:logs:us-east-1:123:log-group:g:log-stream:s because no identity-based policy allows the logs:PutLogEvents action"
	if got := arnInMessage(msg); got != "arn:aws:logs:us-east-1:123:log-group:g:log-stream:s" {
		t.Errorf("arnInMessage = %q", got)
	}
	if got := arnInMessage("Rate exceeded"); got != "" {
		t.Errorf("arnInMessage without an ARN = %q", got)
	}
}

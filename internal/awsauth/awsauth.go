// Package awsauth loads AWS credentials the same way for both destinations: the SDK's default
// chain (environment, IRSA web identity, EKS Pod Identity, IMDSv2 only), optionally assuming a
// role through STS. The SDK's own retries are off: the plugin has one retry layer.
package awsauth

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Options selects the region and an optional role to assume.
type Options struct {
	Region      string
	RoleARN     string // assume this role with the chain's credentials; "" = use them directly
	ExternalID  string
	STSEndpoint string // custom STS endpoint URL; "" = AWS
	// RequestTimeout bounds each SDK request (credentials, STS); 0 = the SDK default. The SDK's
	// buildable client is kept so AWS_CA_BUNDLE still works.
	RequestTimeout time.Duration
}

// Load returns an aws.Config ready for service clients. It does not call AWS: credentials are
// fetched lazily on the first request and cached until they expire.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(o.Region),
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		// IMDSv2 only: never fall back to the unauthenticated v1 protocol.
		awsconfig.WithEC2RoleCredentialOptions(func(eo *ec2rolecreds.Options) {
			eo.Client = imds.New(imds.Options{EnableFallback: aws.FalseTernary})
		}),
	}
	if o.RequestTimeout > 0 {
		opts = append(opts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(o.RequestTimeout)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	if o.RoleARN != "" {
		client := sts.NewFromConfig(cfg, func(so *sts.Options) {
			if o.STSEndpoint != "" {
				so.BaseEndpoint = aws.String(o.STSEndpoint)
			}
		})
		provider := stscreds.NewAssumeRoleProvider(client, o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			if o.ExternalID != "" {
				ao.ExternalID = aws.String(o.ExternalID)
			}
			ao.RoleSessionName = "fluent-bit-cloudwatch-opensearch"
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return cfg, nil
}

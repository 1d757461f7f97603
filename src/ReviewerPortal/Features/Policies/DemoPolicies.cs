namespace ReviewerPortal.Features.Policies;

/// <summary>The policy every demo tenant (and every configured tenant without a policy file) starts with.</summary>
public static class DemoPolicies
{
    public const string Default = """
        # ReviewerPortal policy (format v1). First matching rule wins; 'default' applies when none matches.
        version: v1
        default: require_human          # fail closed: anything not listed waits for a human
        rules:
          # Read-only knowledge lookups never need a human.
          - id: allow-readonly
            when:
              topic: knowledge.read
            decision: allow
          # Payments in production wait for a finance approver.
          - id: require-approval-prod-finance
            when:
              topic: finance.payment.execute
              env: production
            decision: require_human
          # Anything that reaches customers outside the company is reviewed first.
          - id: require-approval-external-notify
            when:
              topic: customer.notify
              channel: external
            decision: require_human
          # Secrets never leave, whoever asks.
          - id: deny-secrets-export
            when:
              topic: secrets.export
            decision: deny
          # Bulk e-mail runs without a human, at most 5 a minute per tenant.
          - id: throttle-bulk-email
            when:
              topic: email.bulk_send
            decision: throttle
            rate: 5/minute
        """;
}

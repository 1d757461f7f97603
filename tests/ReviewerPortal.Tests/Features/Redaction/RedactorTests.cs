using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Redaction;

namespace ReviewerPortal.Tests.Features.Redaction;

/// <summary>The scanner alone: each built-in kind in the forms people paste, and text that must stay as written.</summary>
public sealed class RedactorTests
{
    private static RedactionResult Scan(string text, RedactionSettings? settings = null) =>
        new Redactor(Options.Create(new RedactionOptions()), null!, NullLogger<Redactor>.Instance).Scan(text, settings ?? RedactionSettings.None);

    [Theory]
    [InlineData("Authorization: Bearer abc.DEF-123_xyz~+/==", "Authorization: Bearer [redacted:bearer]")]
    [InlineData("bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-nature", "bearer [redacted:bearer]")]
    [InlineData("key sk-proj-Q7mX2vL9pR4tW8yB1nC6 leaked", "key [redacted:api_key] leaked")]
    [InlineData("stripe sk_live_51HqLyjWDarjtT1zdp7dc9 and pk_test_51HqLyjWDarjtT1zdp7dc9", "stripe [redacted:api_key] and [redacted:api_key]")]
    [InlineData("gh ghp_16C7e42F292c6912E7710c838347Ae178B4a!", "gh [redacted:api_key]!")]
    [InlineData("slack xoxb-123456789012-abcdefABCDEF", "slack [redacted:api_key]")]
    [InlineData("aws AKIAIOSFODNN7EXAMPLE here", "aws [redacted:api_key] here")]
    [InlineData("db password=hunter2 then", "db password=[redacted:credential] then")]
    [InlineData("apikey: 12345abc, next", "apikey: [redacted:credential], next")]
    [InlineData("{\"api_key\": \"a b c\", \"n\": 1}", "{\"api_key\": \"[redacted:credential]\", \"n\": 1}")]
    [InlineData("client_secret = 's3cr3t'", "client_secret = '[redacted:credential]'")]
    [InlineData("TOKEN=abc&x=1", "TOKEN=[redacted:credential]&x=1")]
    [InlineData("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- done", "[redacted:private_key] done")]
    [InlineData("cut off: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", "cut off: [redacted:private_key]")]
    public void Each_kind_is_replaced_and_the_rest_kept(string text, string expected) =>
        Assert.Equal(expected, Scan(text).Text);

    [Theory]
    [InlineData("The bearer of bad news; max_tokens=500; ask the desk-team; skip it")]
    [InlineData("checked the invoice and policy context")]
    [InlineData("password reset requested by the customer")]
    public void Ordinary_text_stays_as_written(string text)
    {
        var result = Scan(text);
        Assert.Equal(text, result.Text);
        Assert.False(result.Redacted);
    }

    [Fact]
    public void Counts_each_kind_and_a_token_already_redacted_is_not_redacted_again()
    {
        var result = Scan("token: Bearer abcdefgh12345678 and Bearer zyxwvuts87654321");
        Assert.Equal(2, result.Kinds["bearer"]);
        Assert.DoesNotContain("abcdefgh", result.Text);
        Assert.Equal(result.Text, Scan(result.Text).Text);
    }

    [Fact]
    public void A_tenant_pattern_names_its_kind_and_may_keep_context_with_a_group_named_s()
    {
        var settings = new RedactionSettings { Patterns = [new("iban", @"\bIBAN (?<s>[A-Z]{2}\d{2}[A-Z0-9]{10,30})\b")] };
        Assert.Equal("pay IBAN [redacted:iban] today", Scan("pay IBAN DE89370400440532013000 today", settings).Text);
    }
}

using Microsoft.AspNetCore.Http.HttpResults;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>RFC 7807 answers with a stable machine-readable <c>code</c> beside the human <c>detail</c>.</summary>
public static class Problems
{
    public static ProblemHttpResult Of(int status, string code, string detail, IDictionary<string, object?>? extensions = null)
    {
        var ext = new Dictionary<string, object?>(extensions ?? new Dictionary<string, object?>()) { ["code"] = code };
        return TypedResults.Problem(detail: detail, statusCode: status, title: Title(status, code),
            type: "urn:reviewerportal:problem:" + code, extensions: ext);
    }

    public static ProblemHttpResult NotFound(string what = "approval") =>
        Of(StatusCodes.Status404NotFound, "not_found", $"No such {what}.");

    /// <summary>400 naming the field at fault (ValidationProblemDetails <c>errors</c>).</summary>
    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] },
            title: "The request is invalid.", type: "urn:reviewerportal:problem:invalid_request");

    public static ValidationProblem Invalid(IDictionary<string, string[]> errors) =>
        TypedResults.ValidationProblem(errors, title: "The request is invalid.", type: "urn:reviewerportal:problem:invalid_request");

    private static string Title(int status, string code) => status switch
    {
        400 => "The request is invalid.",
        401 => "Authentication required.",
        403 => code == "policy_denied" ? "Denied by policy." : "Not allowed.",
        404 => "Not found.",
        409 => "Conflict.",
        423 => "Locked.",
        429 => code == "rate_limited" ? "Too many requests." : "Throttled by policy.",
        503 => "Service unavailable.",
        _ => "Error.",
    };
}

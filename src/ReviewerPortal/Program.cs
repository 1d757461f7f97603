using MudBlazor.Services;
using ReviewerPortal.Components;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Bulk;

using ReviewerPortal.Features.Delegation;
using ReviewerPortal.Features.Mcp;
using ReviewerPortal.Features.Migration;
using ReviewerPortal.Features.Observability;
using ReviewerPortal.Features.Reading;
using ReviewerPortal.Features.Slack;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Http.RateLimiting;

if (CopyStorageCommand.Matches(args))
{
    return await CopyStorageCommand.RunAsync(args, Console.Out, Console.Error);
}

var builder = WebApplication.CreateBuilder(args);

builder.AddApprovals();
builder.AddBulkDecisions();
builder.AddDatabase();
builder.AddAuth();
builder.AddDelegation();
builder.AddApprovalWorkers();
builder.AddReverseProxySupport();
builder.AddTelemetry();
builder.AddSecurityHeaders();
builder.AddRateLimits();
builder.AddPortalAccess();
builder.AddMcpGateway();
builder.AddReading();
builder.AddMigration();
builder.AddSlack();
builder.Services.AddMudServices();
builder.Services.AddRazorComponents().AddInteractiveServerComponents();
builder.AddApiDocumentation();
builder.Services.AddSignalR();

var app = builder.Build();

app.UseReverseProxySupport();
app.UseSecurityHeaders();
app.UseExceptionHandler();
app.UsePortalStatusPages();
app.UsePortalAssets();
app.UseRouting(); // after the status pages, so a re-executed request is routed again
app.UseAuthentication();
app.UseRateLimits();
app.UseAuthorization();
app.UseAntiforgery();

app.MapApiDocumentation();
app.MapApprovalsApis();
app.MapBulkDecisionsApi();

app.MapDelegationApi();
app.MapTelemetry();
app.MapAccountEndpoints();
app.MapMcpGateway();
app.MapMigrationApi();
app.MapSlackApi();
app.MapStaticAssets();
app.MapPortalComponents();

await app.RunAsync();
return 0;

public partial class Program;

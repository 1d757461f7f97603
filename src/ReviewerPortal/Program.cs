using MudBlazor.Services;
using ReviewerPortal.Components;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Mcp;
using ReviewerPortal.Infrastructure.Http;

if (CopyStorageCommand.Matches(args))
{
    return await CopyStorageCommand.RunAsync(args, Console.Out, Console.Error);
}

var builder = WebApplication.CreateBuilder(args);

builder.AddApprovals();
builder.AddDatabase();
builder.AddAuth();
builder.AddApprovalWorkers();
builder.AddMcpGateway();
builder.Services.AddMudServices();
builder.Services.AddRazorComponents().AddInteractiveServerComponents();
builder.Services.AddOpenApi();
builder.Services.AddSignalR();

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UsePortalAssets();
app.UseAuthentication();
app.UseAuthorization();
app.UseAntiforgery();

app.MapOpenApi("/openapi/{documentName}.json");
app.MapApprovalsApis();
app.MapAccountEndpoints();
app.MapMcpGateway();
app.MapStaticAssets();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

await app.RunAsync();
return 0;

public partial class Program;

using MudBlazor.Services;
using ReviewerPortal.Components;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;

var builder = WebApplication.CreateBuilder(args);

builder.AddApprovals();
builder.AddDatabase();
builder.AddAuth();
builder.AddApprovalWorkers();
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
app.MapStaticAssets();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

app.Run();

public partial class Program;

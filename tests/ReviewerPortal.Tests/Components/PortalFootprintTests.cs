using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Layout;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>
/// What one open queue tab keeps on the server for as long as it is open: every component of the layout and page, each
/// with two render buffers. The bar, its theme menu and the queue's filters are plain markup, not library components.
/// </summary>
public sealed class PortalFootprintTests : PortalTestContext
{
    [Fact]
    public async Task An_open_queue_tab_is_its_rows_and_at_most_twenty_components_of_layout_and_page()
    {
        Services.AddSingleton(App.Services.GetRequiredService<DemoMode>());
        SignIn("alice", Roles.Reviewer);
        Renderer.SetRendererInfo(new RendererInfo("Server", isInteractive: true));
        for (var i = 1; i <= 3; i++)
        {
            await App.Agent("acme").SubmitPayment(i);
        }

        var cut = Render<MainLayout>(p => p.Add(c => c.Body, (RenderFragment)(b =>
        {
            b.OpenComponent<Queue>(0);
            b.AddComponentParameter(1, nameof(Queue.Tenant), "acme");
            b.CloseComponent();
        })));
        cut.WaitForAssertion(() => Assert.Equal(3, cut.FindAll("[data-testid=queue-row]").Count));

        var others = cut.FindComponents<IComponent>().Select(c => c.Instance).Where(c => c is not QueueItem).ToList();
        Assert.True(others.Count <= 20, $"{others.Count} components beside the rows: {string.Join(", ", others.Select(c => c.GetType().Name))}");
        Assert.Equal(["/queue", "/cases", "/oncall", "/audit", "/account"], cut.FindAll("nav.rp-nav a").Select(a => a.GetAttribute("href")));
        Assert.Equal("alice", cut.Find("[data-testid=signed-in-user]").TextContent);
    }

    [Fact]
    public void The_theme_menu_names_the_theme_in_use_and_a_choice_applies_at_once()
    {
        Services.AddSingleton(App.Services.GetRequiredService<DemoMode>());
        SignIn("alice", Roles.Reviewer);
        Renderer.SetRendererInfo(new RendererInfo("Server", isInteractive: true));
        var cut = Render<MainLayout>(p => p.Add(c => c.Body, (RenderFragment)(b => b.AddContent(0, "page"))));

        var toggle = cut.Find("[data-testid=theme-toggle] summary");
        Assert.Equal("Theme: As on this device", toggle.GetAttribute("aria-label"));
        Assert.Equal("true", cut.Find("[data-testid=theme-system]").GetAttribute("aria-pressed"));

        cut.Find("[data-testid=theme-dark]").Click();

        cut.WaitForAssertion(() => Assert.Equal("Theme: Dark", cut.Find("[data-testid=theme-toggle] summary").GetAttribute("aria-label")));
        Assert.Equal("true", cut.Find("[data-testid=theme-dark]").GetAttribute("aria-pressed"));
        Assert.Equal("false", cut.Find("[data-testid=theme-system]").GetAttribute("aria-pressed"));
        Assert.Contains("color-scheme: dark", cut.Markup, StringComparison.Ordinal);
    }
}

using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// A browser test class's life: one app (Kestrel on loopback) and one chromium per class, both skipped with one reason
/// where chromium is not installed, both disposed after the class.
/// </summary>
public abstract class PortalBrowserTest : IAsyncLifetime
{
    private TestApp? _app;
    private BrowserSession? _browser;

    /// <summary>The app this class drives; override for other settings.</summary>
    protected virtual Task<TestApp> StartAppAsync() => TestApp.StartAsync(kestrel: true, settings: BrowserSession.AppSettings());

    public async Task InitializeAsync()
    {
        if (!BrowserSession.Installed)
        {
            return;
        }
        _app = await StartAppAsync();
        _browser = await BrowserSession.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    /// <summary>The running app; skips the test where chromium is not installed.</summary>
    protected TestApp App
    {
        get
        {
            Skip.If(_app is null, BrowserSession.NotInstalled);
            return _app!;
        }
    }

    protected BrowserSession Browser
    {
        get
        {
            Skip.If(_browser is null, BrowserSession.NotInstalled);
            return _browser!;
        }
    }

    protected Task<IPage> SignInAsync(string user) => Browser.SignInAsync(App.BaseUrl, user);
}

using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Data;

namespace ReviewerPortal.Features.Auth;

/// <summary>Looks a person up by account name as the database says now: their roles and e-mail, as a <see cref="Caller"/>.</summary>
public sealed class AccountDirectory(IDbContextFactory<AppDbContext> dbFactory, IServiceScopeFactory scopes)
{
    /// <summary>
    /// The account as a caller with its roles now, or null when it is gone or locked out: whoever decides without a
    /// sign-in of their own (an action link's approver, the account a Slack user is mapped to) decides as this.
    /// </summary>
    public async Task<Caller?> FindUnlockedAsync(string userName)
    {
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        if (await users.FindByNameAsync(userName) is not { } user || await users.IsLockedOutAsync(user))
        {
            return null;
        }
        var roles = await users.GetRolesAsync(user);
        return new Caller(user.UserName!, IsAgent: false, AgentTenant: null, roles.ToHashSet(StringComparer.Ordinal),
            string.IsNullOrEmpty(user.Email) ? null : user.Email);
    }

    /// <summary>The account named <paramref name="userName"/> (exact name), or null when there is none.</summary>
    public async Task<Caller?> FindAsync(string userName, CancellationToken cancellationToken = default)
    {
        if (userName.Length is 0 or > 256)
        {
            return null;
        }
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.UserName == userName, cancellationToken);
        if (user is null)
        {
            return null;
        }
        var roles = await (from ur in db.UserRoles
                           join r in db.Roles on ur.RoleId equals r.Id
                           where ur.UserId == user.Id && r.Name != null
                           select r.Name!).ToListAsync(cancellationToken);
        return new Caller(user.UserName!, false, null, roles.ToHashSet(StringComparer.Ordinal), user.Email);
    }

    /// <summary>Every reviewer account's name, in order (whom a delegation may name).</summary>
    public async Task<IReadOnlyList<string>> ReviewersAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var names = await (from u in db.Users
                           join ur in db.UserRoles on u.Id equals ur.UserId
                           join r in db.Roles on ur.RoleId equals r.Id
                           where r.Name == Roles.Reviewer && u.UserName != null
                           select u.UserName!).ToListAsync(cancellationToken);
        return [.. names.Distinct().Order(StringComparer.Ordinal)];
    }
}

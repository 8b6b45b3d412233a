using System.Reflection;
using System.Text;
using Xunit;

namespace OffHeapTracker.Tests.Shared;

/// <summary>Compares an assembly's public surface with an approved text file, so an accidental API change fails a test; shared by both test projects so the two approved files read alike.</summary>
/// <remarks>To accept a deliberate change, run the tests with OFFHEAPTRACKER_APPROVE_API=1 and commit the updated file.</remarks>
internal static class ApprovedPublicApi
{
    /// <summary>Asserts that <paramref name="assembly"/>'s surface matches <c>PublicApi/<paramref name="approvedFile"/></c>, or rewrites that file in the source tree when approving.</summary>
    /// <param name="assembly">The package assembly.</param>
    /// <param name="testProject">The test project's folder under <c>tests/</c>, where the approved file lives.</param>
    /// <param name="approvedFile">The approved file's name.</param>
    public static void Verify(Assembly assembly, string testProject, string approvedFile)
    {
        string actual = Describe(assembly);
        if (Environment.GetEnvironmentVariable("OFFHEAPTRACKER_APPROVE_API") == "1")
        {
            File.WriteAllText(Path.Combine(RepositoryPaths.Root, "tests", testProject, "PublicApi", approvedFile), actual);
            return;
        }

        Assert.Equal(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "PublicApi", approvedFile)), actual);
    }

    private static string Describe(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (Type type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            string kind = type.IsEnum ? "enum" : type.IsInterface ? "interface" : type.IsValueType ? "struct" : type.IsAbstract && type.IsSealed ? "static class" : type.IsSealed ? "sealed class" : "class";
            string bases = string.Join(", ", new[] { type.BaseType }
                .Where(b => b is not null && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
                .Concat(type.GetInterfaces().OrderBy(i => i.FullName, StringComparer.Ordinal))
                .Select(t => t!.ToString()));
            lines.Add($"{kind} {type.FullName}{(bases.Length > 0 ? " : " + bases : string.Empty)}");
            const BindingFlags Flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (string member in type.GetMembers(Flags)
                .Where(m => m is not MethodInfo { IsSpecialName: true })
                .Select(Member)
                .Order(StringComparer.Ordinal))
            {
                lines.Add("  " + member);
            }
        }

        var text = new StringBuilder();
        foreach (string line in lines)
        {
            text.Append(line).Append('\n');
        }

        return text.ToString();
    }

    private static string Member(MemberInfo member) => member switch
    {
        ConstructorInfo c => $"ctor({Parameters(c)})",
        MethodInfo m => $"{(m.IsStatic ? "static " : string.Empty)}{m.ReturnType} {m.Name}({Parameters(m)})",
        PropertyInfo p => $"{(p.GetMethod?.IsStatic == true ? "static " : string.Empty)}{p.PropertyType} {p.Name} {{{(p.GetMethod?.IsPublic == true ? " get;" : string.Empty)}{(p.SetMethod?.IsPublic == true ? (p.SetMethod.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.Name == "IsExternalInit") ? " init;" : " set;") : string.Empty)} }}",
        FieldInfo f => $"{(f.IsLiteral ? "const " : f.IsStatic ? "static " : string.Empty)}{f.FieldType} {f.Name}{(f.IsLiteral ? " = " + f.GetRawConstantValue() : string.Empty)}",
        EventInfo e => $"event {e.EventHandlerType} {e.Name}",
        Type t => $"nested {t.Name}",
        _ => member.ToString()!,
    };

    private static string Parameters(MethodBase method) =>
        string.Join(", ", method.GetParameters().Select(p => $"{p.ParameterType} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : string.Empty)}"));
}

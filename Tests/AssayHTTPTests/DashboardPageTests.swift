import AssayCore
import AssayStore
import Foundation
import Testing
@testable import AssayHTTP

/// The page and its assets: served by Assay alone, no data in them, no way for a stored string
/// to become markup.
@Suite struct DashboardPageTests {
    /// The only absolute URL allowed in the assets: the SVG namespace, an identifier that is
    /// never fetched.
    static let svgNamespace = "http://www.w3.org/2000/svg"

    @Test func thePageAndItsAssetsAreServedWithAStrictPolicy() async throws {
        try await withDashboardAPI(seed: false) { api in
            let expected = [("", "text/html; charset=utf-8"), ("dashboard.js", "text/javascript; charset=utf-8"), ("dashboard.css", "text/css; charset=utf-8")]
            for (path, type) in expected {
                let response = try await api.get(path)
                #expect(response.status == 200, "/\(path)")
                #expect(response.headers["content-type"] == type, "/\(path)")
                #expect(response.headers["x-content-type-options"] == "nosniff", "/\(path)")
                let policy = try #require(response.headers["content-security-policy"], "/\(path)")
                #expect(policy.contains("default-src 'none'"))
                #expect(policy.contains("script-src 'self'"))
                #expect(policy.contains("connect-src 'self'"))
                #expect(!policy.contains("unsafe-inline"))
                #expect(!policy.contains("unsafe-eval"))
            }
            let html = String(decoding: try await api.get("").body, as: UTF8.self)
            #expect(html == DashboardAssets.html)
            #expect(html.contains(#"<script src="/dashboard.js" defer></script>"#))
            #expect(html.contains(#"<link rel="stylesheet" href="/dashboard.css">"#))
            // JSON answers say what they are too, so a browser never sniffs them as HTML.
            #expect(try await api.get("api/windows").headers["x-content-type-options"] == "nosniff")
        }
    }

    @Test func theAssetsReferenceNoOtherHost() {
        for (name, text) in [("html", DashboardAssets.html), ("js", DashboardAssets.script), ("css", DashboardAssets.stylesheet)] {
            let withoutNamespace = text.replacingOccurrences(of: Self.svgNamespace, with: "")
            #expect(!withoutNamespace.lowercased().contains("http://"), "\(name)")
            #expect(!withoutNamespace.lowercased().contains("https://"), "\(name)")
            // No protocol-relative references (src="//cdn…", url(//…)), no CSS imports or web fonts.
            for pattern in [#"src="//"#, #"href="//"#, "url(//", "url(http", "@import", "@font-face"] {
                #expect(!text.contains(pattern), "\(name): \(pattern)")
            }
        }
        // The namespace is used only as createElementNS's argument.
        #expect(DashboardAssets.script.components(separatedBy: Self.svgNamespace).count == 2)
        // Every script is the page's own file; no inline script or style attributes (the policy
        // would block them anyway).
        let html = DashboardAssets.html
        #expect(html.components(separatedBy: "<script").count == 2)
        #expect(!html.contains("style="))
        #expect(!html.contains("<style"))
        #expect(!html.contains(" on"), "no inline event handlers")
    }

    @Test func theScriptNeverTurnsTextIntoMarkup() {
        let script = DashboardAssets.script
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"on",
                     "setAttribute(\"style", "setAttribute(\"href", "DOMParser", "createContextualFragment", "srcdoc"] {
            #expect(!script.contains(sink), "\(sink)")
        }
        // Links are built only from hashes the script makes, with the id percent-encoded.
        #expect(script.contains("\"#/trace/\" + encodeURIComponent(id)"))
        #expect(script.contains("\"#/window/\" + encodeURIComponent(start)"))
    }

    @Test func hostileStoredStringsComeBackAsJSONStringsOnly() async throws {
        try await withDashboardAPI { api in
            // The id has markup, quotes, an ampersand and non-ASCII; it travels percent-encoded.
            let response = try await api.get("api/traces/\(Seed.hostileTraceID)")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            #expect(response.headers["x-content-type-options"] == "nosniff")
            let trace = try response.parsed()
            #expect(trace["trace_id"]?.stringValue == Seed.hostileTraceID)
            #expect(trace["request_preview"]?["text"]?.stringValue == "<script>alert(1)</script>")

            let spans = try await api.json("api/traces/tr-b1")
            #expect(spans["spans"]?[1]?["name"]?.stringValue == Seed.hostileName)
            // The page is static: nothing from the database is ever in it.
            let page = String(decoding: try await api.get("").body, as: UTF8.self)
            #expect(!page.contains("alert("))
        }
    }
}

/// `schemas/openapi.yaml` lists every route the server has, and no other.
@Suite struct OpenAPIDocumentTests {
    /// `<repo>/schemas/openapi.yaml`, when the sources are checked out next to it.
    static var document: String? {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let file = tests.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schemas/openapi.yaml")
        return (try? Data(contentsOf: file)).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test(.enabled(if: document != nil, "schemas/openapi.yaml not reachable from #filePath"))
    func everyRouteIsDocumented() throws {
        let text = try #require(Self.document)
        #expect(text.hasPrefix("openapi: 3."))
        // The keys of `paths:`: lines indented by exactly two spaces up to `components:`.
        let section = try #require(text.components(separatedBy: "\npaths:\n").last?.components(separatedBy: "\ncomponents:\n").first)
        let documented = Set(section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") else { return nil }
            return String(line.dropFirst(2).dropLast())
        })
        let served = Set(AdminRoutes.routes.keys).union(["/api/windows/{start}", "/api/traces/{id}"])
        #expect(documented == served)
        #expect(AdminRoutes.prefixRoutes.map(\.prefix).allSatisfy { prefix in documented.contains { $0.hasPrefix(prefix) } })
        // Each documented operation's method is one the server answers.
        for (path, methods) in AdminRoutes.routes {
            let block = try #require(("\n" + section).components(separatedBy: "\n  \(path):\n").dropFirst().first, "\(path)")
            let operations = block.components(separatedBy: "\n  /").first ?? block
            for method in methods {
                #expect(operations.contains("    \(method.rawValue.lowercased()):"), "\(method) \(path)")
            }
        }
    }
}

import AssayCore
import Foundation
import Testing

/// The repository's own copies of files that tests also carry in `Fixtures/` (found from this
/// source file's path), so drift tests can check the two copies are identical.
enum RepositoryFiles {
    /// `<repo>/schemas`, when the sources are checked out next to it; nil otherwise.
    static var schemasDirectory: URL? {
        let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let schemas = testsDirectory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("schemas")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: schemas.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return nil
        }
        return schemas
    }

    /// The files under `schemas/` that `Fixtures/schemas/` mirrors.
    static let mirroredSchemaFiles = [
        "sampling-vectors.json",
        "monitor.schema.json",
        "assessment.schema.json",
        "window-summary.schema.json",
    ]

    static func schemaBytes(_ name: String) throws -> [UInt8] {
        guard let directory = schemasDirectory else { throw Fixtures.Missing(name: "schemas/") }
        return [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }
}

@Suite("Fixture copies of schemas/ have not drifted")
struct SchemaDriftTests {
    @Test(.enabled(if: RepositoryFiles.schemasDirectory != nil, "repository schemas/ not reachable from #filePath"),
          arguments: RepositoryFiles.mirroredSchemaFiles)
    func fixtureCopyEqualsRepositoryFile(name: String) throws {
        let repository = try RepositoryFiles.schemaBytes(name)
        let fixture = try Fixtures.bytes("schemas/\(name)")
        #expect(!repository.isEmpty)
        let firstDifference = zip(fixture, repository).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(fixture.count, repository.count)
        let identical = fixture == repository
        #expect(identical, """
            Tests/AssayCoreTests/Fixtures/schemas/\(name) differs from schemas/\(name) at byte \(firstDifference) \
            (\(fixture.count) vs \(repository.count) bytes); copy schemas/\(name) over the fixture
            """)
    }
}

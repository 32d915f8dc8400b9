import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A document parsed with Foundation's `XMLParser`, flattened to its elements in document
/// order, so tests can check well-formedness and find elements, attributes and text.
public struct XMLTree {
    public struct Element {
        public var name: String
        public var attributes: [String: String]
        /// Character data directly and indirectly inside the element.
        public var text: String
        /// Index of the enclosing element in `elements` (`nil` for the root).
        public var parent: Int?
    }

    public var elements: [Element] = []

    /// Parses `xml`, throwing the parser's error when it is not well-formed.
    public init(_ xml: String) throws {
        let parser = XMLParser(data: Data(xml.utf8))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else {
            throw parser.parserError ?? CocoaError(.coderReadCorrupt)
        }
        elements = collector.elements
    }

    /// Elements named `name`, in document order.
    public func all(_ name: String) -> [Element] {
        elements.filter { $0.name == name }
    }

    /// The element enclosing `element`, if any.
    public func parent(of element: Element) -> Element? {
        element.parent.map { elements[$0] }
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        /// Indices into `elements` of the open elements, outermost first.
        var open: [Int] = []

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements.append(Element(name: elementName, attributes: attributes, text: "", parent: open.last))
            open.append(elements.count - 1)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            for index in open {
                elements[index].text += string
            }
        }
    }
}

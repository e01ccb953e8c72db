// Extra is not in the import table, and this is the wrong form of package doc.
package extra
